// SPDX-License-Identifier: MIT
#pragma once

#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

#include "kvbits/cache/options.hpp"
#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits::model {

/**
 * A static cache configuration as written on the command line:
 *   `fp32`, `fp16`, or `static:K,V[,g=G][,w=R][,s=S][,t=hadamard|scale]`
 * with K, V the key and value bits (2, 3, 4, 5, 6, 8, 16, 32), G the quantization group size
 * (0 = whole head vector, the default), R the residual window of recent tokens kept as float,
 * S the number of attention-sink tokens kept as float, and t the key transform.
 */
struct PolicySpec {
  std::string text;                                 ///< the specification as given
  BitDecision bits{32, 32};                         ///< precision of every token
  std::size_t group_size = 0;                       ///< g=; applies to keys and values
  std::size_t residual_window = 0;                  ///< w=
  std::size_t sink_tokens = 0;                      ///< s=
  KeyTransform key_transform = KeyTransform::none;  ///< t=; keys only

  /// @return true when the key transform needs calibration statistics before use.
  [[nodiscard]] bool needs_calibration() const noexcept {
    return key_transform == KeyTransform::channel_scale;
  }

  /**
   * Cache options for a model of the given shape.
   * @param layers   transformer layers
   * @param kv_heads key/value heads
   * @param head_dim head width
   * @param capacity most tokens the cache must hold
   */
  [[nodiscard]] CacheOptions cache_options(std::size_t layers, std::size_t kv_heads, std::size_t head_dim,
                                           std::size_t capacity) const {
    CacheOptions options;
    options.layers = layers;
    options.kv_heads = kv_heads;
    options.head_dim = head_dim;
    options.capacity = capacity;
    options.residual_window = residual_window;
    options.sink_tokens = sink_tokens;
    options.key.group_size = group_size;
    options.key.transform = key_transform;
    options.value.group_size = group_size;
    return options;
  }
};

namespace detail {

inline std::size_t parse_count(std::string_view digits, std::string_view spec, std::string_view what) {
  std::size_t value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  kvbits::detail::require(error == std::errc{} && end == digits.data() + digits.size() && !digits.empty(),
                          Errc::invalid_argument,
                          "policy '" + std::string(spec) + "': " + std::string(what) + " '" +
                              std::string(digits) + "' is not a non-negative integer");
  return value;
}

inline int parse_bits(std::string_view digits, std::string_view spec, std::string_view what) {
  const std::size_t value = parse_count(digits, spec, what);
  const int bits = value <= 64 ? static_cast<int>(value) : -1;
  kvbits::detail::require(is_supported_bits(bits), Errc::invalid_argument,
                          "policy '" + std::string(spec) + "': " + std::string(what) + " " +
                              std::string(digits) + " is not one of 2, 3, 4, 5, 6, 8, 16, 32");
  return bits;
}

}  // namespace detail

/** Text of the accepted policy syntax, for --help and error messages. */
inline constexpr std::string_view kPolicySyntax =
    "fp32 | fp16 | static:K,V[,g=G][,w=R][,s=S][,t=hadamard|scale]";

/**
 * Parses a policy specification (see PolicySpec).
 * @param text e.g. "fp16", "static:4,4", "static:8,4,g=32,w=32,s=4,t=hadamard"
 * @return the parsed specification; cache-level rules (group size dividing head_dim, ...) are
 *         checked later by the cache itself.
 * @throw Error(invalid_argument) naming the part that does not parse.
 */
inline PolicySpec parse_policy(std::string_view text) {
  PolicySpec spec;
  spec.text = std::string(text);
  if (text == "fp32") return spec;
  if (text == "fp16") {
    spec.bits = {16, 16};
    return spec;
  }
  constexpr std::string_view kPrefix = "static:";
  kvbits::detail::require(text.substr(0, kPrefix.size()) == kPrefix, Errc::invalid_argument,
                          "policy '" + spec.text + "' is not of the form " + std::string(kPolicySyntax));
  std::string_view rest = text.substr(kPrefix.size());
  int field = 0;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view part = rest.substr(0, comma);
    if (field == 0) {
      spec.bits.key_bits = detail::parse_bits(part, text, "key bits");
    } else if (field == 1) {
      spec.bits.value_bits = detail::parse_bits(part, text, "value bits");
    } else {
      const std::size_t equals = part.find('=');
      kvbits::detail::require(
          equals != std::string_view::npos, Errc::invalid_argument,
          "policy '" + spec.text + "': option '" + std::string(part) + "' is not of the form name=value");
      const std::string_view name = part.substr(0, equals);
      const std::string_view value = part.substr(equals + 1);
      if (name == "g") {
        spec.group_size = detail::parse_count(value, text, "group size");
      } else if (name == "w") {
        spec.residual_window = detail::parse_count(value, text, "residual window");
      } else if (name == "s") {
        spec.sink_tokens = detail::parse_count(value, text, "sink tokens");
      } else if (name == "t" && value == "hadamard") {
        spec.key_transform = KeyTransform::hadamard;
      } else if (name == "t" && value == "scale") {
        spec.key_transform = KeyTransform::channel_scale;
      } else {
        throw Error(Errc::invalid_argument, "policy '" + spec.text + "': unknown option '" +
                                                std::string(part) + "' (g=, w=, s=, t=hadamard|scale)");
      }
    }
    ++field;
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  kvbits::detail::require(field >= 2, Errc::invalid_argument,
                          "policy '" + spec.text + "' needs key and value bits: static:K,V");
  return spec;
}

}  // namespace kvbits::model
