// SPDX-License-Identifier: MIT
#pragma once

// Intrinsics first, so that Eigen parses them under kvbits' GCC 12 warning fix.
#include "kvbits/core/simd_headers.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvbits/controller/checksum.hpp"
#include "kvbits/controller/weight_file.hpp"
#include "kvbits/core/error.hpp"
#include "learn/tool_controller.hpp"

namespace kvbits::learn {

/// One labelled decision: a token of one layer, at one decision age, of one training document.
struct DamageSample {
  std::uint32_t document = 0;                     ///< index of the document in its text file
  std::uint32_t position = 0;                     ///< the token's position
  std::uint32_t age = 0;                          ///< the decision age (one of kDecisionAges)
  std::uint32_t layer = 0;                        ///< the layer deciding
  std::array<float, kControllerInputs> inputs{};  ///< the controller's raw inputs at the decision
  /// [width] mean KL per position over the horizon with only this token's keys of this layer at
  /// that width (from the age on), everything else FP32; finite and >= 0
  std::array<float, kControllerWidths> key_damage{};
  std::array<float, kControllerWidths> value_damage{};  ///< the same for its values

  friend bool operator==(const DamageSample&, const DamageSample&) = default;
};

/// What a labelling run measured, and how.
struct DamageDataset {
  std::string model;                     ///< the model file's name
  std::string cache;                     ///< the cache options the widths were stored with (e.g. "g=32")
  std::uint32_t head_dim = 0;            ///< the model's head width
  std::uint32_t horizon = 0;             ///< positions averaged per damage
  std::vector<std::string> input_names;  ///< the controller inputs, in order
  std::vector<int> widths;               ///< the widths, cheapest first
  std::vector<double> bits_per_element;  ///< [widths] storage bits per element, group metadata included
  std::vector<DamageSample> samples;     ///< every labelled decision

  friend bool operator==(const DamageDataset&, const DamageDataset&) = default;
};

/**
 * Damage dataset file, version 1. Binary, little-endian, no padding:
 * ```
 * header (28 bytes)
 *   u8[8] magic "KVBITDMG", u32 version (1), u64 payload size, u64 FNV-1a 64 checksum of the payload
 * payload
 *   u32 length + bytes    model file name
 *   u32 length + bytes    cache options
 *   u32 head_dim, u32 horizon
 *   u32 F; F x { u32 length (1..64), bytes }      controller input names
 *   u32 W; W x { u32 width, f64 bits per element }
 *   u64 N; N x { u32 document, u32 position, u32 age, u32 layer,
 *                f32[F] inputs, f32[W] key damage, f32[W] value damage }
 * ```
 * The reader checks the header, the checksum, every length against what is left, and every
 * value; a damaged file is Error(corrupt_data) naming what is wrong, another version
 * Error(unsupported), a file for another controller (other inputs or widths)
 * Error(invalid_argument).
 */
inline constexpr std::array<char, 8> kDatasetMagic = {'K', 'V', 'B', 'I', 'T', 'D', 'M', 'G'};
inline constexpr std::uint32_t kDatasetVersion = 1;        ///< the version this build writes and reads
inline constexpr std::size_t kDatasetHeaderBytes = 28;     ///< magic, version, payload size, checksum
inline constexpr std::size_t kDatasetSizeOffset = 12;      ///< where the header's payload size is
inline constexpr std::size_t kDatasetChecksumOffset = 20;  ///< where the header's checksum is
inline constexpr std::size_t kMaxDatasetText = 4096;       ///< longest model name or cache text

/**
 * @return the dataset as a file's bytes (format above).
 * @throw Error(invalid_argument) for a dataset that could not be read back (wrong input or width
 *        count for the controller, texts too long, non-finite values).
 */
inline std::vector<std::byte> encode_dataset(const DamageDataset& data) {
  kvbits::detail::require(
      data.input_names.size() == kControllerInputs && data.widths.size() == kControllerWidths &&
          data.bits_per_element.size() == kControllerWidths,
      Errc::invalid_argument, "damage dataset: inputs or widths do not fit the controller");
  kvbits::detail::require(data.model.size() <= kMaxDatasetText && data.cache.size() <= kMaxDatasetText,
                          Errc::invalid_argument, "damage dataset: model name or cache text too long");
  kvbits::ByteWriter out;
  out.text(std::string_view(kDatasetMagic.data(), kDatasetMagic.size()));
  out.u32(kDatasetVersion);
  out.u64(0);  // payload size and checksum, patched below
  out.u64(0);
  for (const std::string& text : {data.model, data.cache}) {
    out.u32(static_cast<std::uint32_t>(text.size()));
    out.text(text);
  }
  out.u32(data.head_dim);
  out.u32(data.horizon);
  out.u32(static_cast<std::uint32_t>(data.input_names.size()));
  for (const std::string& name : data.input_names) {
    out.u32(static_cast<std::uint32_t>(name.size()));
    out.text(name);
  }
  out.u32(static_cast<std::uint32_t>(data.widths.size()));
  for (std::size_t i = 0; i < data.widths.size(); ++i) {
    out.u32(static_cast<std::uint32_t>(data.widths[i]));
    out.f64(data.bits_per_element[i]);
  }
  out.u64(data.samples.size());
  for (const DamageSample& s : data.samples) {
    for (const std::uint32_t v : {s.document, s.position, s.age, s.layer}) out.u32(v);
    for (const float v : s.inputs) out.f32(v);
    for (const float v : s.key_damage) out.f32(v);
    for (const float v : s.value_damage) out.f32(v);
  }
  std::vector<std::byte>& bytes = out.bytes();
  const auto payload = std::span<const std::byte>(bytes).subspan(kDatasetHeaderBytes);
  const std::uint64_t size = payload.size();
  const std::uint64_t checksum = kvbits::detail::fnv1a64(payload);
  for (std::size_t i = 0; i < 8; ++i) {
    bytes[kDatasetSizeOffset + i] = static_cast<std::byte>((size >> (8 * i)) & 0xffU);
    bytes[kDatasetChecksumOffset + i] = static_cast<std::byte>((checksum >> (8 * i)) & 0xffU);
  }
  return bytes;
}

namespace detail {

inline std::string read_text(kvbits::ByteReader& in, std::size_t limit, const std::string& what) {
  const std::uint32_t length = in.u32(what + " length");
  if (length > limit)
    in.fail(what + " is " + std::to_string(length) + " bytes long, at most " + std::to_string(limit));
  return std::string(in.text(length, what));
}

}  // namespace detail

/**
 * Decodes a damage dataset, checking everything (see the format).
 * @param bytes  the whole file
 * @param source names the file in errors
 * @throw Error(corrupt_data | unsupported | invalid_argument) as the format describes.
 */
inline DamageDataset decode_dataset(std::span<const std::byte> bytes, std::string_view source) {
  kvbits::ByteReader in(bytes, source);
  if (in.text(kDatasetMagic.size(), "magic") !=
      std::string_view(kDatasetMagic.data(), kDatasetMagic.size())) {
    in.fail("not a kvbits damage dataset (its first 8 bytes are not \"KVBITDMG\")");
  }
  const std::uint32_t version = in.u32("version");
  if (version != kDatasetVersion) {
    in.fail(Errc::unsupported, "damage dataset version " + std::to_string(version) +
                                   "; this build reads version " + std::to_string(kDatasetVersion));
  }
  const std::uint64_t payload_size = in.u64("payload size");
  const std::uint64_t checksum = in.u64("checksum");
  if (payload_size != in.remaining()) {
    in.fail("the header declares " + std::to_string(payload_size) + " payload bytes but " +
            std::to_string(in.remaining()) + " follow (truncated or extended)");
  }
  if (kvbits::detail::fnv1a64(in.rest()) != checksum) {
    in.fail(
        "checksum mismatch: the payload does not hash to the header's FNV-1a 64 value; the file is "
        "corrupted");
  }
  DamageDataset data;
  data.model = detail::read_text(in, kMaxDatasetText, "model name");
  data.cache = detail::read_text(in, kMaxDatasetText, "cache options");
  data.head_dim = in.u32("head_dim");
  data.horizon = in.u32("horizon");
  if (data.head_dim == 0 || data.horizon == 0) in.fail("head_dim and horizon must be positive");

  const std::uint32_t inputs = in.u32("input count");
  if (inputs > in.remaining() / 5)
    in.fail("input count " + std::to_string(inputs) + " cannot fit in the file");
  for (std::uint32_t i = 0; i < inputs; ++i) {
    data.input_names.push_back(
        detail::read_text(in, kvbits::kMaxFeatureNameBytes, "name of input " + std::to_string(i)));
  }
  const std::uint32_t widths = in.u32("width count");
  if (widths > in.remaining() / 12)
    in.fail("width count " + std::to_string(widths) + " cannot fit in the file");
  for (std::uint32_t i = 0; i < widths; ++i) {
    data.widths.push_back(static_cast<int>(in.u32("width")));
    data.bits_per_element.push_back(in.f64("bits per element"));
    if (!(std::isfinite(data.bits_per_element.back()) && data.bits_per_element.back() > 0.0)) {
      in.fail("bits per element of width " + std::to_string(data.widths.back()) + " is not finite and > 0");
    }
  }
  const auto expected = controller_input_names();
  const bool same_inputs =
      std::equal(data.input_names.begin(), data.input_names.end(), expected.begin(), expected.end());
  const bool same_widths = std::equal(data.widths.begin(), data.widths.end(),
                                      ControllerWidths::kValues.begin(), ControllerWidths::kValues.end());
  if (!same_inputs || !same_widths) {
    in.fail(Errc::invalid_argument,
            "the dataset was labelled for another controller (inputs or widths differ from examples/learn/"
            "tool_controller.hpp): label it again");
  }

  const std::uint64_t count = in.u64("sample count");
  constexpr std::size_t kSampleBytes = 16 + 4 * (kControllerInputs + 2 * kControllerWidths);
  if (count != in.remaining() / kSampleBytes || in.remaining() % kSampleBytes != 0) {
    in.fail("the file declares " + std::to_string(count) + " samples but holds " +
            std::to_string(in.remaining()) + " bytes of them (" + std::to_string(kSampleBytes) +
            " per sample)");
  }
  data.samples.resize(count);
  for (std::size_t n = 0; n < count; ++n) {
    DamageSample& s = data.samples[n];
    s.document = in.u32("document");
    s.position = in.u32("position");
    s.age = in.u32("age");
    s.layer = in.u32("layer");
    for (float& v : s.inputs) {
      v = in.f32("input");
      if (!std::isfinite(v)) in.fail("an input of sample " + std::to_string(n) + " is not finite");
    }
    for (auto* damage : {&s.key_damage, &s.value_damage}) {
      for (float& v : *damage) {
        v = in.f32("damage");
        if (!(std::isfinite(v) && v >= 0.0f))
          in.fail("a damage of sample " + std::to_string(n) + " is not finite and >= 0");
      }
    }
  }
  return data;
}

/**
 * Writes a dataset file.
 * @throw the errors of encode_dataset; Error(io_error) naming the path.
 */
inline void save_dataset(const std::filesystem::path& path, const DamageDataset& data) {
  const std::vector<std::byte> bytes = encode_dataset(data);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  kvbits::detail::require(static_cast<bool>(out), Errc::io_error,
                          "cannot open '" + path.string() + "' for writing");
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  kvbits::detail::require(static_cast<bool>(out), Errc::io_error, "could not write '" + path.string() + "'");
}

/**
 * Reads a dataset file.
 * @throw Error(io_error) when it cannot be read; the errors of decode_dataset.
 */
inline DamageDataset load_dataset(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  kvbits::detail::require(static_cast<bool>(in), Errc::io_error, "cannot open '" + path.string() + "'");
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  kvbits::detail::require(!in.bad(), Errc::io_error, "could not read '" + path.string() + "'");
  const auto* begin = reinterpret_cast<const std::byte*>(chars.data());
  return decode_dataset(std::span<const std::byte>(begin, chars.size()), path.string());
}

}  // namespace kvbits::learn
