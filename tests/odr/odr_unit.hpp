// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

// The interface between the two-instruction-set program's translation units: plain types
// only, so that nothing kvbits defines crosses from one unit to the other.
namespace kvbits::odr {

inline constexpr std::size_t kKvHeads = 2;
inline constexpr std::size_t kHeadDim = 64;
inline constexpr std::size_t kQueryHeads = 4 * kKvHeads;
inline constexpr std::size_t kTokens = 40;
inline constexpr std::size_t kGroup = 32;
inline constexpr std::uint64_t kSeed = 7;
/// The cache's widths: a random mix over grouped, half and float formats.
inline constexpr const char* kWidthMix = "8/4,4/2,3/3,2/2,16/8,32/32";

/// What one translation unit computed, and with which code.
struct Run {
  std::string isa;                  // KVBITS_ISA_NAME of the unit
  std::string backend;              // XsimdBackend::name() of the unit
  std::vector<std::uint8_t> codes;  // [kTokens][kKvHeads * kHeadDim] keys encoded at 4 bits
  std::vector<float> attention;     // [kQueryHeads][kHeadDim] attention over kTokens tokens
  std::vector<float> received;      // [kTokens] attention each token received
  std::vector<float> features;      // LogitFeatures of the keys read as logits
};

/// The inputs every unit works on: [kTokens][kKvHeads][kHeadDim] keys and values, a query.
struct Input {
  std::vector<float> keys;
  std::vector<float> values;
  std::vector<float> query;  // [kQueryHeads][kHeadDim]
};

/// Encodes the keys and runs an attention pass with XsimdBackend, built for the x86-64 baseline.
Run run_baseline(const Input& input);
/// The same, built for the build machine (-march=native).
Run run_native(const Input& input);

}  // namespace kvbits::odr
