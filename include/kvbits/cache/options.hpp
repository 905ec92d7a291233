// SPDX-License-Identifier: MIT
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "kvbits/codec/format.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits {

/**
 * An exact change of basis applied to stored vectors before quantization to
 * spread or tame outlier channels. The attention result does not change: the
 * query is transformed to match (keys), or the output is transformed back
 * (values).
 */
enum class KeyTransform {
  none,           ///< store the vectors as given
  hadamard,       ///< orthonormal Walsh-Hadamard rotation; head_dim must be a power of two
  channel_scale,  ///< keys only: channel c divided by a calibrated power-of-two scale s_c
};

/// How one of K or V is quantized. Bit widths come from the policy, per token.
struct KVCodecOptions {
  std::size_t group_size = 0;          ///< elements per quantization group; 0 = the whole head vector
  Scheme scheme = Scheme::asymmetric;  ///< group parameterisation for 2..8 bits
  KeyTransform transform = KeyTransform::none;  ///< basis change before quantization
};

/// Bytes of a page plane (one KV head's key or value rows of one page) unless set otherwise:
/// small enough that a page's rows stay in L1/L2 while every query head of a GQA group reads them.
inline constexpr std::size_t kDefaultPagePlaneBytes = 16384;
/// Smallest and largest page plane a cache accepts.
inline constexpr std::size_t kMinPagePlaneBytes = 4096;
inline constexpr std::size_t kMaxPagePlaneBytes = std::size_t{1} << 20;

/// Run-time configuration of a QuantizedKVCache. Validated by its constructor.
struct CacheOptions {
  std::size_t layers = 1;     ///< transformer layers, each with its own token stream
  std::size_t kv_heads = 1;   ///< key/value heads per layer
  std::size_t head_dim = 64;  ///< elements per head vector: a multiple of 8 in [8, 256]
  std::size_t capacity = 0;   ///< most tokens one layer may hold (>= 1)
  /// R most recent tokens kept as float; 0 = decide on insert. Larger than the
  /// room left by the sinks is allowed and means "every token stays float":
  /// the cache uses min(R, capacity - effective sinks).
  std::size_t residual_window = 0;
  /// First S tokens kept as float forever; the cache uses min(S, capacity).
  std::size_t sink_tokens = 0;
  KVCodecOptions key{};    ///< key codec
  KVCodecOptions value{};  ///< value codec
  /// Bytes of one page plane, the rows of one KV head's keys (or values) in a page: a power
  /// of two in [4096, 1 MiB]; a page holds about this many bytes per plane, and at least 128
  /// tokens (in a cache of fewer than 2048 tokens, a sixteenth of the capacity). Larger planes
  /// stream faster from DRAM over long contexts (attention switches pages less often), but a
  /// stream's last page is reserved whole, so each stream in use may hold up to one page of
  /// unused room per layer, KV head and K/V. Many short sequences want small planes; few long
  /// ones large planes.
  std::size_t page_plane_bytes = kDefaultPagePlaneBytes;
};

/// Largest head vector a cache stores.
inline constexpr std::size_t kMaxHeadDim = 256;

namespace detail {

/**
 * Throws Error(code, make_message()) unless `condition` holds. The message is
 * built only on failure, so checks on per-token paths never allocate.
 */
template <class MakeMessage>
inline void require_lazy(bool condition, Errc code, MakeMessage&& make_message) {
  if (!condition) throw Error(code, std::forward<MakeMessage>(make_message)());
}

inline void validate_codec_options(const KVCodecOptions& codec, std::size_t head_dim, const char* which) {
  const std::string name(which);
  // Any grouped width exercises the group rules; they are the same for every width.
  const QuantFormat probe{4, codec.group_size, codec.scheme};
  const std::size_t group = effective_group_size(probe, head_dim);
  require(group % 8 == 0 && group > 0 && head_dim % group == 0, Errc::invalid_argument,
          name + ".group_size " + std::to_string(codec.group_size) +
              " must be 0 (whole head vector) or a multiple of 8 that divides head_dim " +
              std::to_string(head_dim));
  require(codec.scheme == Scheme::asymmetric || codec.scheme == Scheme::symmetric, Errc::invalid_argument,
          name + ".scheme is not a known Scheme");
  switch (codec.transform) {
    case KeyTransform::none:
      break;
    case KeyTransform::hadamard:
      require(std::has_single_bit(head_dim), Errc::invalid_argument,
              name + ".transform = hadamard needs a power-of-two head_dim, got " + std::to_string(head_dim));
      break;
    case KeyTransform::channel_scale:
      require(name == "key", Errc::unsupported,
              name + ".transform = channel_scale is supported for keys only (the query absorbs the scales)");
      break;
    default:
      throw Error(Errc::invalid_argument, name + ".transform is not a known KeyTransform");
  }
}

/**
 * Checks every CacheOptions rule.
 * @throws Error(invalid_argument or unsupported) naming the field and the rule.
 */
inline void validate_cache_options(const CacheOptions& options) {
  require(options.layers >= 1, Errc::invalid_argument, "layers must be at least 1");
  require(options.kv_heads >= 1, Errc::invalid_argument, "kv_heads must be at least 1");
  require(options.head_dim >= 8 && options.head_dim <= kMaxHeadDim && options.head_dim % 8 == 0,
          Errc::invalid_argument,
          "head_dim " + std::to_string(options.head_dim) + " must be a multiple of 8 in [8, 256]");
  require(options.capacity >= 1, Errc::invalid_argument, "capacity must be at least 1 token per layer");
  require(options.capacity < std::numeric_limits<std::uint32_t>::max(), Errc::invalid_argument,
          "capacity " + std::to_string(options.capacity) + " exceeds the 32-bit token index");
  validate_codec_options(options.key, options.head_dim, "key");
  validate_codec_options(options.value, options.head_dim, "value");
  require(std::has_single_bit(options.page_plane_bytes) && options.page_plane_bytes >= kMinPagePlaneBytes &&
              options.page_plane_bytes <= kMaxPagePlaneBytes,
          Errc::invalid_argument,
          "page_plane_bytes " + std::to_string(options.page_plane_bytes) + " must be a power of two in [" +
              std::to_string(kMinPagePlaneBytes) + ", " + std::to_string(kMaxPagePlaneBytes) + "]");
}

/// Sinks the cache keeps: min(sink_tokens, capacity).
constexpr std::size_t effective_sinks(const CacheOptions& options) noexcept {
  return options.sink_tokens < options.capacity ? options.sink_tokens : options.capacity;
}

/// Window the cache keeps: min(residual_window, capacity - effective sinks).
constexpr std::size_t effective_window(const CacheOptions& options) noexcept {
  const std::size_t room = options.capacity - effective_sinks(options);
  return options.residual_window < room ? options.residual_window : room;
}

}  // namespace detail
}  // namespace kvbits
