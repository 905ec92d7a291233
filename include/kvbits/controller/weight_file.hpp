// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "kvbits/controller/dense_layer.hpp"
#include "kvbits/core/byte_io.hpp"
#include "kvbits/core/checksum.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits {

/**
 * Controller weight file, version 1. Binary, little-endian, no padding;
 * f32/f64 are IEEE-754 bit patterns:
 * ```
 * header (28 bytes)
 *   u8[8]  magic "KVBITMLP"
 *   u32    version (1)
 *   u64    payload size in bytes: exactly the bytes after the header
 *   u64    FNV-1a 64 checksum of the payload
 * payload
 *   u32    F, the input features;  F x { u32 length (1..64), UTF-8 name }
 *   u32    H, the hidden layers;   H x u32 hidden size
 *   u32    W, the widths per head; W x u32 width in bits, cheapest first
 *   f64    lambda, mu, tau         the loss weights and damage tolerance used in training
 *   f32[F] input mean, f32[F] input std (> 0)
 *   for each of the H + 1 layers, input side first:
 *          f32[out][in] weight (row-major), f32[out] bias
 *          layer sizes F -> H1 -> ... -> Hk -> 2W; the output's first W rows are the key head
 * ```
 * The loader checks the header, then the checksum, then every field against
 * the compile-time Mlp and the expected feature names, bounds-checking every
 * read; every number must be finite. It allocates nothing whose size the file
 * chooses: a stream is read up to max_weight_file_bytes<Net>() and no further.
 *
 * Errors: Error(corrupt_data) for a file that breaks the format (bad magic,
 * truncation, trailing bytes, checksum mismatch, out-of-range values);
 * Error(unsupported) for another version; Error(invalid_argument) for a
 * well-formed file made for another controller (other feature names, layer
 * sizes or widths); Error(io_error) when the file cannot be read or written.
 */
inline constexpr std::array<char, 8> kWeightFileMagic = {'K', 'V', 'B', 'I', 'T', 'M', 'L', 'P'};
inline constexpr std::uint32_t kWeightFileVersion = 1;           ///< the version this build writes and reads
inline constexpr std::size_t kWeightFileHeaderBytes = 28;        ///< magic, version, payload size, checksum
inline constexpr std::size_t kWeightFilePayloadSizeOffset = 12;  ///< where the header's payload size is
inline constexpr std::size_t kWeightFileChecksumOffset = 20;     ///< where the header's checksum is
inline constexpr std::size_t kMaxFeatureNameBytes = 64;          ///< longest feature name a file may hold

/// How a controller was trained, recorded in its weight file.
struct TrainingMetadata {
  double lambda = 0.0;  ///< weight of the expected cost, finite and >= 0
  double mu = 0.0;      ///< weight of the expected damage, finite and >= 0
  double tau = 0.0;     ///< damage tolerance that chose the target widths, finite and >= 0

  /// Member-wise equality.
  friend bool operator==(const TrainingMetadata&, const TrainingMetadata&) = default;
};

/// A controller read from a weight file, with how it was trained.
template <class Net>
struct ControllerWeights {
  Net net{};                    ///< weights and normalisation
  TrainingMetadata training{};  ///< lambda, mu, tau
};

/// @return the size of the largest weight file a `Net` can have (every name kMaxFeatureNameBytes long).
template <class Net>
constexpr std::size_t max_weight_file_bytes() noexcept {
  return kWeightFileHeaderBytes + 4 + Net::kInputs * (4 + kMaxFeatureNameBytes) + 4 + 4 * (Net::kLayers - 1) +
         4 + 4 * Net::kWidths + 3 * 8 + 2 * 4 * Net::kInputs + 4 * Net::kParameterCount;
}

namespace detail {

template <class Net>
constexpr void check_weight_file_net() noexcept {
  static_assert(std::is_same_v<typename Net::scalar_type, float>,
                "weight files hold float parameters: save and load an Mlp<..., float>");
}

/// "a, b, c" for error messages.
inline std::string join_names(std::span<const std::string_view> names) {
  std::string text;
  for (const std::string_view name : names) {
    if (!text.empty()) text += ", ";
    text += name;
  }
  return text;
}

/// "7-32-16-2x4": input, hidden sizes, then the two heads, for error messages.
template <class Net>
std::string layer_sizes_text() {
  std::string text;
  for (std::size_t i = 0; i < Net::kLayers; ++i) {
    if (i > 0) text += "-";
    text += std::to_string(Net::kSizes[i]);
  }
  text += "-2x";
  text += std::to_string(Net::kWidths);
  return text;
}

template <class Net>
std::string widths_text() {
  std::string text;
  for (const int bits : Net::widths_type::kValues) {
    if (!text.empty()) text += ",";
    text += std::to_string(bits);
  }
  return text;
}

inline bool valid_metadata(const TrainingMetadata& m) noexcept {
  const auto ok = [](double v) { return std::isfinite(v) && v >= 0.0; };
  return ok(m.lambda) && ok(m.mu) && ok(m.tau);
}

template <class Net>
void require_feature_names(std::span<const std::string_view> names) {
  require(names.size() == Net::kInputs, Errc::invalid_argument,
          "a weight file of this controller names " + std::to_string(Net::kInputs) + " features, got " +
              std::to_string(names.size()));
  for (const std::string_view name : names) {
    require(!name.empty() && name.size() <= kMaxFeatureNameBytes, Errc::invalid_argument,
            "feature names must be 1.." + std::to_string(kMaxFeatureNameBytes) + " bytes long");
  }
}

}  // namespace detail

/**
 * Encodes a controller as a weight file (format above).
 * @param net the controller (float parameters).
 * @param names its input features' names, in input order (e.g. ControllerInputs::names()).
 * @param training how it was trained.
 * @return the file's bytes.
 * @throws Error(invalid_argument) for wrong names, metadata out of range, or a non-finite
 *         parameter, a non-positive std (such a file could not be loaded).
 */
template <class Net>
std::vector<std::byte> encode_weights(const Net& net, std::span<const std::string_view> names,
                                      const TrainingMetadata& training) {
  detail::check_weight_file_net<Net>();
  detail::require_feature_names<Net>(names);
  detail::require(detail::valid_metadata(training), Errc::invalid_argument,
                  "training lambda, mu and tau must be finite and >= 0");
  detail::require(
      net.input_mean().allFinite() && net.input_std().allFinite() && (net.input_std().array() > 0.0f).all(),
      Errc::invalid_argument, "input normalisation must be finite with std > 0");
  bool finite = true;
  detail::for_each_tensor([&finite](const auto& tensor) { finite = finite && tensor.allFinite(); },
                          net.layers());
  detail::require(finite, Errc::invalid_argument, "every controller parameter must be finite");

  ByteWriter out;
  out.text(std::string_view(kWeightFileMagic.data(), kWeightFileMagic.size()));
  out.u32(kWeightFileVersion);
  out.u64(0);  // payload size and checksum, filled in below
  out.u64(0);
  out.u32(static_cast<std::uint32_t>(names.size()));
  for (const std::string_view name : names) {
    out.u32(static_cast<std::uint32_t>(name.size()));
    out.text(name);
  }
  out.u32(static_cast<std::uint32_t>(Net::kLayers - 1));
  for (std::size_t i = 1; i < Net::kLayers; ++i) out.u32(static_cast<std::uint32_t>(Net::kSizes[i]));
  out.u32(static_cast<std::uint32_t>(Net::kWidths));
  for (const int bits : Net::widths_type::kValues) out.u32(static_cast<std::uint32_t>(bits));
  out.f64(training.lambda);
  out.f64(training.mu);
  out.f64(training.tau);
  for (const float v : net.input_mean()) out.f32(v);
  for (const float v : net.input_std()) out.f32(v);
  detail::for_each_tensor(
      [&out](const auto& tensor) {
        for (Eigen::Index r = 0; r < tensor.rows(); ++r) {
          for (Eigen::Index c = 0; c < tensor.cols(); ++c) out.f32(tensor(r, c));
        }
      },
      net.layers());

  std::vector<std::byte>& bytes = out.bytes();
  const std::span<const std::byte> payload =
      std::span<const std::byte>(bytes).subspan(kWeightFileHeaderBytes);
  const auto patch = [&bytes](std::size_t offset, std::uint64_t v) {
    for (std::size_t i = 0; i < 8; ++i) bytes[offset + i] = static_cast<std::byte>((v >> (8 * i)) & 0xffU);
  };
  patch(kWeightFilePayloadSizeOffset, payload.size());
  patch(kWeightFileChecksumOffset, detail::fnv1a64(payload));
  return bytes;
}

/**
 * Decodes a weight file from memory, checking everything (see the format).
 * @param bytes the whole file.
 * @param names the input features the caller's controller reads, in input order.
 * @param source names the file in error messages.
 * @return the controller and its training metadata.
 * @throws Error(corrupt_data | unsupported | invalid_argument) as described for the format.
 */
template <class Net>
ControllerWeights<Net> decode_weights(std::span<const std::byte> bytes,
                                      std::span<const std::string_view> names,
                                      std::string_view source = "controller weight file") {
  detail::check_weight_file_net<Net>();
  detail::require_feature_names<Net>(names);
  ByteReader in(bytes, source);

  const std::string_view magic = in.text(kWeightFileMagic.size(), "magic");
  if (magic != std::string_view(kWeightFileMagic.data(), kWeightFileMagic.size())) {
    in.fail("not a kvbits controller weight file (its first 8 bytes are not \"KVBITMLP\")");
  }
  const std::uint32_t version = in.u32("version");
  if (version != kWeightFileVersion) {
    in.fail(Errc::unsupported, "weight file version " + std::to_string(version) +
                                   "; this build reads version " + std::to_string(kWeightFileVersion));
  }
  const std::uint64_t payload_size = in.u64("payload size");
  const std::uint64_t checksum = in.u64("checksum");
  if (payload_size > in.remaining()) {
    in.fail("truncated: the header declares " + std::to_string(payload_size) + " payload bytes but " +
            std::to_string(in.remaining()) + " follow");
  }
  if (payload_size < in.remaining()) {
    in.fail(std::to_string(in.remaining() - payload_size) + " unexpected bytes after the declared " +
            std::to_string(payload_size) + "-byte payload");
  }
  if (detail::fnv1a64(in.rest()) != checksum) {
    in.fail(
        "checksum mismatch: the payload does not hash to the header's FNV-1a 64 value; the file is "
        "corrupted");
  }

  // Feature names: read them all (bounded by the checked payload), then compare.
  const std::uint32_t feature_count = in.u32("feature count");
  if (feature_count > in.remaining() / 5) {
    in.fail("feature count " + std::to_string(feature_count) + " cannot fit in the " +
            std::to_string(in.remaining()) + " payload bytes left");
  }
  std::string found;
  bool names_match = feature_count == names.size();
  for (std::uint32_t i = 0; i < feature_count; ++i) {
    const std::string what = "name of feature " + std::to_string(i);
    const std::uint32_t length = in.u32(what);
    if (length == 0 || length > kMaxFeatureNameBytes) {
      in.fail(what + " is " + std::to_string(length) + " bytes long; names are 1.." +
              std::to_string(kMaxFeatureNameBytes) + " bytes");
    }
    const std::string_view name = in.text(length, what);
    if (i < names.size() && name != names[i]) names_match = false;
    if (!found.empty()) found += ", ";
    found += name;
  }
  if (!names_match) {
    in.fail(Errc::invalid_argument, "the file's features (" + found + ") are not the controller's (" +
                                        detail::join_names(names) +
                                        "): use weights trained for these features, in this order");
  }

  const std::uint32_t hidden_count = in.u32("hidden layer count");
  if (hidden_count > in.remaining() / 4) {
    in.fail("hidden layer count " + std::to_string(hidden_count) + " cannot fit in the payload");
  }
  std::string file_sizes = std::to_string(feature_count);
  bool sizes_match = hidden_count + 1 == Net::kLayers;
  for (std::uint32_t i = 0; i < hidden_count; ++i) {
    const std::uint32_t size = in.u32("hidden layer size");
    file_sizes += '-';
    file_sizes += std::to_string(size);
    if (sizes_match && size != Net::kSizes[i + 1]) sizes_match = false;
  }
  const std::uint32_t width_count = in.u32("width count");
  if (width_count > in.remaining() / 4) {
    in.fail("width count " + std::to_string(width_count) + " cannot fit in the payload");
  }
  if (!sizes_match || width_count != Net::kWidths) {
    in.fail(Errc::invalid_argument, "the file's layer sizes " + file_sizes + "-2x" +
                                        std::to_string(width_count) + " are not the controller's " +
                                        detail::layer_sizes_text<Net>() +
                                        ": use an Mlp of the file's shape, or weights trained for this one");
  }
  std::string file_widths;
  bool widths_match = true;
  for (std::size_t i = 0; i < Net::kWidths; ++i) {
    const std::uint32_t bits = in.u32("width");
    if (!file_widths.empty()) file_widths += ",";
    file_widths += std::to_string(bits);
    if (bits != static_cast<std::uint32_t>(Net::widths_type::kValues[i])) widths_match = false;
  }
  if (!widths_match) {
    in.fail(Errc::invalid_argument, "the file's widths " + file_widths + " are not the controller's " +
                                        detail::widths_text<Net>() + " (its WidthList)");
  }

  ControllerWeights<Net> result;
  result.training.lambda = in.f64("lambda");
  result.training.mu = in.f64("mu");
  result.training.tau = in.f64("tau");
  if (!detail::valid_metadata(result.training)) in.fail("lambda, mu and tau must be finite and >= 0");
  for (float& v : result.net.input_mean()) {
    v = in.f32("input mean");
    if (!std::isfinite(v)) in.fail("an input mean is not finite");
  }
  for (float& v : result.net.input_std()) {
    v = in.f32("input std");
    if (!(std::isfinite(v) && v > 0.0f)) in.fail("an input std is not finite and > 0");
  }
  std::size_t tensor = 0;
  detail::for_each_tensor(
      [&](auto& t) {
        const std::string what =
            "layer " + std::to_string(tensor / 2) + (tensor % 2 == 0 ? " weight" : " bias");
        for (Eigen::Index r = 0; r < t.rows(); ++r) {
          for (Eigen::Index c = 0; c < t.cols(); ++c) {
            t(r, c) = in.f32(what);
            if (!std::isfinite(t(r, c))) in.fail(what + " is not finite");
          }
        }
        ++tensor;
      },
      result.net.layers());
  if (in.remaining() != 0) in.fail(std::to_string(in.remaining()) + " unexpected bytes after the last layer");
  return result;
}

/**
 * Writes a controller as a weight file.
 * @throws the errors of encode_weights; Error(io_error) when the stream fails.
 */
template <class Net>
void write_weights(std::ostream& out, const Net& net, std::span<const std::string_view> names,
                   const TrainingMetadata& training) {
  const std::vector<std::byte> bytes = encode_weights(net, names, training);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  detail::require(static_cast<bool>(out), Errc::io_error, "could not write the controller weight file");
}

/**
 * Reads a weight file from a stream, at most max_weight_file_bytes<Net>() bytes.
 * @throws the errors of decode_weights; Error(corrupt_data) for a longer stream,
 *         Error(io_error) when the stream fails.
 */
template <class Net>
ControllerWeights<Net> read_weights(std::istream& in, std::span<const std::string_view> names,
                                    std::string_view source = "controller weight file") {
  constexpr std::size_t kLimit = max_weight_file_bytes<Net>();
  std::vector<std::byte> bytes;
  std::array<char, 4096> buffer{};
  while (bytes.size() <= kLimit) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    const auto* begin = reinterpret_cast<const std::byte*>(buffer.data());
    bytes.insert(bytes.end(), begin, begin + got);
    if (got < buffer.size()) break;
  }
  if (in.bad()) throw Error(Errc::io_error, std::string(source) + ": read failed");
  if (bytes.size() > kLimit) {
    throw Error(Errc::corrupt_data, std::string(source) +
                                        ": longer than any weight file of this controller (" +
                                        std::to_string(kLimit) + " bytes)");
  }
  return decode_weights<Net>(bytes, names, source);
}

/**
 * Saves a controller to a file.
 * @throws the errors of encode_weights; Error(io_error) naming the path when it cannot be written.
 */
template <class Net>
void save_weights(const std::filesystem::path& path, const Net& net, std::span<const std::string_view> names,
                  const TrainingMetadata& training) {
  const std::vector<std::byte> bytes = encode_weights(net, names, training);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  detail::require(static_cast<bool>(out), Errc::io_error, "cannot open '" + path.string() + "' for writing");
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  detail::require(static_cast<bool>(out), Errc::io_error, "could not write '" + path.string() + "'");
}

/**
 * Loads a controller saved by save_weights.
 * @throws Error(io_error) when the file cannot be opened; the errors of read_weights otherwise.
 */
template <class Net>
ControllerWeights<Net> load_weights(const std::filesystem::path& path,
                                    std::span<const std::string_view> names) {
  std::ifstream in(path, std::ios::binary);
  detail::require(static_cast<bool>(in), Errc::io_error, "cannot open '" + path.string() + "'");
  const std::string source = path.string();
  return read_weights<Net>(in, names, source);
}

}  // namespace kvbits
