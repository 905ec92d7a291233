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
#include <utility>
#include <vector>

#include "kvbits/cache/decision_schedule.hpp"
#include "kvbits/cache/key_basis.hpp"
#include "kvbits/cache/layer_store.hpp"
#include "kvbits/cache/options.hpp"
#include "kvbits/cache/stream_table.hpp"
#include "kvbits/cache/token_notes.hpp"
#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/byte_io.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/core/section_stream.hpp"
#include "kvbits/policy/policy.hpp"
#include "kvbits/policy/policy_state.hpp"

namespace kvbits {

/**
 * Cache file, version 2: the whole state of a QuantizedKVCache, written by
 * QuantizedKVCache::save and read by load. Binary, little-endian, no padding;
 * f32 are IEEE-754 bit patterns and packed rows are the bytes the cache stores
 * (codec/format.hpp), so kvbits reads and writes them on little-endian hosts only.
 * ```
 * u8[8] magic "KVBCACHE", u32 version (2)
 * sections, each: u32 tag | u64 payload bytes | payload | u64 WordChecksum of tag, length, payload
 *  HEAD  13 x u64 options: layers, kv_heads, head_dim, capacity, residual_window, sink_tokens,
 *                          key group_size, scheme, transform, then the same for values,
 *                          page_plane_bytes
 *        u32 W, W x u32 supported widths; stream s holds widths (s / W, s % W), stream W*W the float area
 *        u64 sinks, u64 window (effective), u32 A, A x u64 the policy's decision ages
 *        u32 statistics kept (0 or 1), u32 D, D bytes the policy's describe() (may be empty)
 *  PLCY  the policy's save_state() (empty for a policy without state)
 *  per layer l = 0 .. layers-1:
 *   LAYR u32 l, u64 tokens, u32 queries, u32 samples counted by the layer,
 *        u64[W*W + 1] tokens per stream, f32[kv_heads][head_dim] key scales,
 *        the notes ring, R entries (token t at t % R): u64 position, u32 token id (two's
 *        complement), u32 feature count (<= 16), f32[16] features
 *   STRM for each stream holding n > 0 tokens, in stream order:
 *        u32 stream, u32[n] token of each slot, key rows [kv_heads][n][key row bytes],
 *        value rows [kv_heads][n][value row bytes], and when statistics are kept
 *        f32[n] sum, sum_squares, max, last, u32[n] first query, first sample
 *  END   u64 tokens of all layers
 * ```
 * Version 1 is the same but for HEAD's 12 option fields: it predates page_plane_bytes, and its
 * caches all had 16384-byte planes, so a version-1 file loads into a cache with
 * page_plane_bytes 16384 (the default) and saves back as version 2.
 *
 * Every count is checked before it sizes anything, so no allocation exceeds
 * what the destination cache could hold. Errors: Error(corrupt_data) for a
 * broken file (bad magic, truncation, checksum mismatch, sections out of
 * order, impossible values: a token index that is not a permutation, a
 * float-area token that is neither a sink nor in the window or the reverse,
 * notes with more than 16 features, key scales not finite and > 0, a policy
 * state the policy rejects); Error(unsupported) for another version or width
 * table; Error(invalid_argument) for a well-formed file saved from a cache
 * with other options, decision ages, statistics or policy description;
 * Error(io_error) when the stream fails.
 */
inline constexpr std::array<char, 8> kCacheFileMagic = {'K', 'V', 'B', 'C', 'A', 'C', 'H', 'E'};
inline constexpr std::uint32_t kCacheFileVersion = 2;             ///< the version this build writes
inline constexpr std::uint32_t kOldestCacheFileVersion = 1;       ///< the oldest version it reads
inline constexpr std::size_t kMaxCacheFileHeaderBytes = 1 << 20;  ///< longest HEAD payload accepted
inline constexpr std::size_t kMaxCacheFilePolicyBytes = 1 << 20;  ///< longest PLCY payload accepted
inline constexpr std::size_t kCacheFileOptionFields = 13;         ///< u64 option fields of HEAD (v1: 12)

namespace detail {

static_assert(std::endian::native == std::endian::little,
              "cache files store rows as the cache holds them: kvbits supports little-endian hosts only");

inline constexpr std::uint32_t kHeaderTag = section_tag("HEAD");
inline constexpr std::uint32_t kPolicyTag = section_tag("PLCY");
inline constexpr std::uint32_t kLayerTag = section_tag("LAYR");
inline constexpr std::uint32_t kStreamTag = section_tag("STRM");
inline constexpr std::uint32_t kEndTag = section_tag("END ");

/// The page plane of every version-1 file: the format predates the option.
inline constexpr std::uint64_t kVersion1PagePlaneBytes = 16384;

/// Bytes of one notes-ring entry in a file: position, token id, feature count, features.
inline constexpr std::size_t kNoteFileBytes = 8 + 4 + 4 + 4 * kMaxTokenFeatures;

/// What HEAD records: the shape a cache file fits, and which policy wrote it.
struct CacheFileHeader {
  std::array<std::uint64_t, kCacheFileOptionFields> options{};  // option_fields() order
  std::vector<std::uint32_t> widths;                            // kSupportedBits of the writer
  std::uint64_t sinks = 0;                                      // effective sinks
  std::uint64_t window = 0;                                     // effective window
  std::vector<std::uint64_t> ages;                              // the policy's decision ages
  bool statistics = false;                                      // attention statistics kept
  std::string policy;                                           // the policy's describe()
};

/// Names of the option fields, in file order.
inline constexpr std::array<std::string_view, kCacheFileOptionFields> kOptionFieldNames = {
    "layers",       "kv_heads",        "head_dim",        "capacity",      "residual_window",
    "sink_tokens",  "key.group_size",  "key.scheme",      "key.transform", "value.group_size",
    "value.scheme", "value.transform", "page_plane_bytes"};
static_assert(!kOptionFieldNames.back().empty(), "name every option field");

inline std::array<std::uint64_t, kCacheFileOptionFields> option_fields(const CacheOptions& o) {
  const auto n = [](auto v) { return static_cast<std::uint64_t>(v); };
  return {n(o.layers),          n(o.kv_heads),         n(o.head_dim),       n(o.capacity),
          n(o.residual_window), n(o.sink_tokens),      n(o.key.group_size), n(o.key.scheme),
          n(o.key.transform),   n(o.value.group_size), n(o.value.scheme),   n(o.value.transform),
          n(o.page_plane_bytes)};
}

/// The header a cache with these parts writes, and expects of a file it loads.
template <Policy P>
CacheFileHeader cache_file_header(const CacheOptions& options, const DecisionSchedule& schedule,
                                  bool statistics, const P& policy) {
  CacheFileHeader header;
  header.options = option_fields(options);
  header.widths.assign(kSupportedBits.begin(), kSupportedBits.end());
  header.sinks = schedule.sinks();
  header.window = schedule.window();
  header.ages.assign(schedule.ages().begin(), schedule.ages().end());
  header.statistics = statistics;
  header.policy = policy_description(policy);
  return header;
}

inline std::vector<std::byte> encode_header(const CacheFileHeader& header) {
  ByteWriter out;
  for (const std::uint64_t field : header.options) out.u64(field);
  out.u32(static_cast<std::uint32_t>(header.widths.size()));
  for (const std::uint32_t bits : header.widths) out.u32(bits);
  out.u64(header.sinks);
  out.u64(header.window);
  out.u32(static_cast<std::uint32_t>(header.ages.size()));
  for (const std::uint64_t age : header.ages) out.u64(age);
  out.u32(header.statistics ? 1 : 0);
  out.u32(static_cast<std::uint32_t>(header.policy.size()));
  out.text(header.policy);
  return std::move(out.bytes());
}

/// Reads HEAD of a file of `version` (kOldestCacheFileVersion .. kCacheFileVersion).
inline CacheFileHeader decode_header(ByteReader& in, std::uint32_t version) {
  CacheFileHeader header;
  // Version 1 ends its option fields before page_plane_bytes, the last one.
  const std::size_t fields = version == 1 ? kCacheFileOptionFields - 1 : kCacheFileOptionFields;
  for (std::size_t i = 0; i < fields; ++i) header.options[i] = in.u64("option field");
  if (version == 1) header.options[kCacheFileOptionFields - 1] = kVersion1PagePlaneBytes;
  const std::uint32_t widths = in.u32("width count");
  if (widths > in.remaining() / 4) in.fail("width count " + std::to_string(widths) + " cannot fit in HEAD");
  for (std::uint32_t i = 0; i < widths; ++i) header.widths.push_back(in.u32("width"));
  header.sinks = in.u64("sinks");
  header.window = in.u64("window");
  const std::uint32_t ages = in.u32("decision age count");
  if (ages > in.remaining() / 8) {
    in.fail("decision age count " + std::to_string(ages) + " cannot fit in HEAD");
  }
  for (std::uint32_t i = 0; i < ages; ++i) header.ages.push_back(in.u64("decision age"));
  const std::uint32_t statistics = in.u32("statistics flag");
  if (statistics > 1) in.fail("statistics flag " + std::to_string(statistics) + " is not 0 or 1");
  header.statistics = statistics == 1;
  const std::uint32_t length = in.u32("policy description length");
  header.policy = std::string(in.text(length, "policy description"));
  if (in.remaining() != 0) in.fail(std::to_string(in.remaining()) + " unexpected bytes at the end of HEAD");
  return header;
}

template <class T>
std::string list_text(const std::vector<T>& values) {
  std::string text;
  for (const T v : values) {
    if (!text.empty()) text += ',';
    text += std::to_string(v);
  }
  return text.empty() ? "none" : text;
}

/**
 * @throws Error(unsupported) when `file` comes from a build with other widths,
 *         Error(invalid_argument) naming the first field where it differs from `cache`.
 */
inline void require_same_header(const CacheFileHeader& file, const CacheFileHeader& cache,
                                const SectionReader& reader) {
  if (file.widths != cache.widths) {
    reader.fail(Errc::unsupported, "the file's widths (" + list_text(file.widths) +
                                       ") are not this build's (" + list_text(cache.widths) + ")");
  }
  const auto differ = [&](std::string_view field, const std::string& found, const std::string& here) {
    const std::string name(field);
    reader.fail(Errc::invalid_argument, "the file was saved from a cache with " + name + " " + found +
                                            ", this cache has " + name + " " + here +
                                            ": load it into a cache built with the same options and policy");
  };
  for (std::size_t i = 0; i < kCacheFileOptionFields; ++i) {
    if (file.options[i] != cache.options[i]) {
      differ(kOptionFieldNames[i], std::to_string(file.options[i]), std::to_string(cache.options[i]));
    }
  }
  if (file.sinks != cache.sinks) differ("sinks", std::to_string(file.sinks), std::to_string(cache.sinks));
  if (file.window != cache.window) {
    differ("window", std::to_string(file.window), std::to_string(cache.window));
  }
  if (file.ages != cache.ages) differ("decision ages", list_text(file.ages), list_text(cache.ages));
  if (file.statistics != cache.statistics) {
    const auto kept = [](bool on) { return std::string(on ? "kept" : "not kept"); };
    differ("attention statistics", kept(file.statistics), kept(cache.statistics));
  }
  if (file.policy != cache.policy) differ("policy", "'" + file.policy + "'", "'" + cache.policy + "'");
}

/// Payload bytes of a layer's LAYR section.
inline std::uint64_t layer_section_bytes(const CacheOptions& options, std::size_t ring_size) noexcept {
  return 4 + 8 + 4 + 4 + 8 * kStreamCount + 4 * options.kv_heads * options.head_dim +
         kNoteFileBytes * ring_size;
}

/// Payload bytes of the STRM section of `stream` holding `tokens` tokens.
inline std::uint64_t stream_section_bytes(const PagedStream& stream, std::size_t tokens,
                                          bool statistics) noexcept {
  const std::size_t per_token = 4 + stream.kv_heads() * (stream.key_row() + stream.value_row()) +
                                (statistics ? SlotStatistics::kBytesPerSlot : 0);
  return 4 + per_token * tokens;
}

/// "layer 3" / "layer 3, stream 4/2" for errors.
inline std::string layer_text(std::size_t layer) { return "layer " + std::to_string(layer); }
inline std::string stream_text(std::size_t layer, std::size_t s) {
  const BitDecision bits = stream_bits(s);
  return layer_text(layer) + (s == kResidualStream ? ", float area"
                                                   : ", stream " + std::to_string(bits.key_bits) + "/" +
                                                         std::to_string(bits.value_bits));
}

/// Tokens in the float area of a layer of `size` tokens: the sinks and the window.
constexpr std::size_t residual_tokens(std::size_t size, std::size_t sinks, std::size_t window) noexcept {
  const std::size_t kept_sinks = size < sinks ? size : sinks;
  const std::size_t rest = size - kept_sinks;
  return kept_sinks + (rest < window ? rest : window);
}

template <class Layer>
std::vector<std::byte> encode_layer(const Layer& layer, std::size_t index, std::span<const float> scales) {
  const LayerStore& store = layer.store;
  ByteWriter out;
  out.u32(static_cast<std::uint32_t>(index));
  out.u64(store.size());
  out.u32(store.queries());
  out.u32(store.samples());
  for (std::size_t s = 0; s < kStreamCount; ++s) out.u64(store.stream(s).size());
  for (const float scale : scales) out.f32(scale);
  for (const TokenNote& note : layer.notes.entries()) {
    out.u64(note.position);
    out.u32(static_cast<std::uint32_t>(note.token_id));
    out.u32(note.feature_count);
    for (const float feature : note.features) out.f32(feature);
  }
  return std::move(out.bytes());
}

inline void write_stream(SectionWriter& writer, const LayerStore& store, std::size_t s) {
  const PagedStream& stream = store.stream(s);
  writer.begin(kStreamTag, stream_section_bytes(stream, stream.size(), store.keeps_statistics()));
  const auto index = static_cast<std::uint32_t>(s);
  writer.write(&index, sizeof(index));
  writer.write(stream.slot_tokens().data(), stream.size() * sizeof(std::uint32_t));
  const auto write_run = [&writer](const std::uint8_t* bytes, std::size_t n) { writer.write(bytes, n); };
  stream.for_each_row_run(write_run);
  if (store.keeps_statistics()) std::as_const(store.statistics(s)).for_each_array(write_run);
  writer.end();
}

/**
 * Writes a cache file (format above) of a cache's parts.
 * @param name names the destination in errors, e.g. "the cache file".
 * @param layers [layers] of a type with members `store` (LayerStore) and `notes` (TokenNotes).
 * @throws Error(io_error) when the stream fails.
 */
template <Policy P, class Layers>
void write_cache_file(std::ostream& out, std::string_view name, const CacheOptions& options,
                      const DecisionSchedule& schedule, const P& policy, const Layers& layers,
                      const KeyBasis& basis) {
  SectionWriter writer(out);
  ByteWriter preamble;
  preamble.text(std::string_view(kCacheFileMagic.data(), kCacheFileMagic.size()));
  preamble.u32(kCacheFileVersion);
  writer.raw(preamble.bytes());
  const bool statistics = layers[0].store.keeps_statistics();
  writer.section(kHeaderTag, encode_header(cache_file_header(options, schedule, statistics, policy)));
  ByteWriter state;
  save_policy_state(policy, state);
  writer.section(kPolicyTag, state.bytes());
  std::uint64_t tokens = 0;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    writer.section(kLayerTag, encode_layer(layers[l], l, basis.scales(l)));
    for (std::size_t s = 0; s < kStreamCount; ++s) {
      if (layers[l].store.stream(s).size() > 0) write_stream(writer, layers[l].store, s);
    }
    tokens += layers[l].store.size();
  }
  ByteWriter end;
  end.u64(tokens);
  writer.section(kEndTag, end.bytes());
  writer.finish(name);
}

/// A layer's LAYR section, checked; what the streams that follow must hold.
struct LayerRecord {
  std::size_t tokens = 0;
  std::uint32_t queries = 0;
  std::uint32_t samples = 0;
  std::array<std::size_t, kStreamCount> stream_tokens{};  // tokens per stream
};

template <class Layer>
LayerRecord read_layer(SectionReader& reader, std::string_view source, const CacheOptions& options,
                       const DecisionSchedule& schedule, std::size_t index, Layer& layer, KeyBasis& basis) {
  const std::string where = layer_text(index);
  const std::vector<std::byte> bytes =
      reader.section_exact(kLayerTag, layer_section_bytes(options, layer.notes.ring_size()), where);
  ByteReader in(bytes, source);
  LayerRecord record;
  if (const std::uint32_t found = in.u32("layer index"); found != index) {
    in.fail(where + " holds the section of layer " + std::to_string(found));
  }
  const std::uint64_t tokens = in.u64("token count");
  if (tokens > options.capacity) {
    in.fail(where + " holds " + std::to_string(tokens) + " tokens, more than the capacity " +
            std::to_string(options.capacity));
  }
  record.tokens = static_cast<std::size_t>(tokens);
  record.queries = in.u32("query count");
  record.samples = in.u32("sample count");
  std::size_t sum = 0;
  for (std::size_t s = 0; s < kStreamCount; ++s) {
    const std::uint64_t count = in.u64("stream token count");
    if (count > record.tokens - sum) {
      in.fail(stream_text(index, s) + " holds more tokens than the layer's " + std::to_string(record.tokens));
    }
    record.stream_tokens[s] = static_cast<std::size_t>(count);
    sum += record.stream_tokens[s];
  }
  if (sum != record.tokens) {
    in.fail(where + "'s streams hold " + std::to_string(sum) + " tokens, not its " +
            std::to_string(record.tokens));
  }
  const std::size_t residual = residual_tokens(record.tokens, schedule.sinks(), schedule.window());
  if (record.stream_tokens[kResidualStream] != residual) {
    in.fail(where + "'s float area holds " + std::to_string(record.stream_tokens[kResidualStream]) +
            " tokens; its sinks and window are " + std::to_string(residual));
  }
  std::vector<float> scales(options.kv_heads * options.head_dim);
  for (float& scale : scales) {
    scale = in.f32("key scale");
    if (!(std::isfinite(scale) && scale > 0.0f)) {
      in.fail(where + " has a key scale that is not finite and > 0");
    }
  }
  basis.restore_scales(index, scales);
  for (std::size_t i = 0; i < layer.notes.ring_size(); ++i) {
    TokenNote note;
    note.position = static_cast<std::size_t>(in.u64("note position"));
    note.token_id = static_cast<std::int32_t>(in.u32("note token id"));
    note.feature_count = in.u32("note feature count");
    if (note.feature_count > kMaxTokenFeatures) {
      in.fail(where + " has a note with " + std::to_string(note.feature_count) + " features, more than " +
              std::to_string(kMaxTokenFeatures));
    }
    for (float& feature : note.features) feature = in.f32("note feature");
    layer.notes.restore_entry(i, note);
  }
  return record;
}

inline void read_stream(SectionReader& reader, LayerStore& store, std::size_t layer, std::size_t s,
                        std::size_t tokens) {
  const std::string where = stream_text(layer, s);
  reader.begin_exact(kStreamTag, stream_section_bytes(store.stream(s), tokens, store.keeps_statistics()),
                     where);
  std::uint32_t index = 0;
  reader.read(&index, sizeof(index));
  if (index != s) reader.fail(where + ": the section is stream " + std::to_string(index));
  std::vector<std::uint32_t> slot_tokens(tokens);
  reader.read(slot_tokens.data(), tokens * sizeof(std::uint32_t));
  const auto read_run = [&reader](std::uint8_t* bytes, std::size_t n) { reader.read(bytes, n); };
  store.restore_stream(s, slot_tokens).for_each_row_run(read_run);
  if (store.keeps_statistics()) store.statistics(s).for_each_array(read_run);
  reader.end();
}

// Every token of a layer sits in the float area exactly when it is a sink or in the window.
inline void require_residual_placement(const SectionReader& reader, const LayerStore& store,
                                       std::size_t layer, const DecisionSchedule& schedule) {
  const std::size_t size = store.size();
  for (std::size_t t = 0; t < size; ++t) {
    const bool expected = schedule.is_sink(t) || t + schedule.window() >= size;
    if (store.in_residual(t) != expected) {
      reader.fail(layer_text(layer) + ": token " + std::to_string(t) +
                  (expected ? " should be in the float area (a sink or in the window) but is not"
                            : " is in the float area but is neither a sink nor in the window"));
    }
  }
}

/**
 * Reads a cache file (format above) into the parts of a freshly constructed
 * cache with `options`, `schedule` and a copy of the destination's policy.
 * The parts are left half-filled when it throws: the caller discards them.
 * @param layers [layers] of a type with members `store` (LayerStore) and `notes` (TokenNotes), empty.
 * @throws Error(corrupt_data | unsupported | invalid_argument | io_error) as the format describes.
 */
template <Policy P, class Layers>
void read_cache_file(std::istream& in, std::string_view source, const CacheOptions& options,
                     const DecisionSchedule& schedule, P& policy, Layers& layers, KeyBasis& basis) {
  SectionReader reader(in, source);
  std::array<std::byte, kCacheFileMagic.size() + 4> preamble{};
  reader.raw(preamble, "magic and version");
  ByteReader fields(preamble, source);
  if (fields.text(kCacheFileMagic.size(), "magic") !=
      std::string_view(kCacheFileMagic.data(), kCacheFileMagic.size())) {
    fields.fail("not a kvbits cache file (its first 8 bytes are not \"KVBCACHE\")");
  }
  const std::uint32_t version = fields.u32("version");
  if (version < kOldestCacheFileVersion || version > kCacheFileVersion) {
    fields.fail(Errc::unsupported,
                "cache file version " + std::to_string(version) + "; this build reads versions " +
                    std::to_string(kOldestCacheFileVersion) + " to " + std::to_string(kCacheFileVersion));
  }

  const std::vector<std::byte> head =
      reader.section(kHeaderTag, kMaxCacheFileHeaderBytes, "the header (HEAD)");
  ByteReader head_fields(head, source);
  const bool statistics = layers[0].store.keeps_statistics();
  require_same_header(decode_header(head_fields, version),
                      cache_file_header(options, schedule, statistics, policy), reader);

  const std::vector<std::byte> state =
      reader.section(kPolicyTag, kMaxCacheFilePolicyBytes, "the policy state (PLCY)");
  const std::string state_source = std::string(source) + ", policy state";
  ByteReader state_fields(state, state_source);
  load_policy_state(policy, state_fields);
  if (state_fields.remaining() != 0) {
    state_fields.fail(std::to_string(state_fields.remaining()) + " bytes the policy does not read");
  }

  std::uint64_t tokens = 0;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const LayerRecord record = read_layer(reader, source, options, schedule, l, layers[l], basis);
    LayerStore& store = layers[l].store;
    for (std::size_t s = 0; s < kStreamCount; ++s) {
      if (record.stream_tokens[s] > 0) read_stream(reader, store, l, s, record.stream_tokens[s]);
    }
    if (!store.finish_restore(record.tokens, record.queries, record.samples)) {
      reader.fail(layer_text(l) + ": the streams' slots do not hold each of its " +
                  std::to_string(record.tokens) + " tokens exactly once");
    }
    require_residual_placement(reader, store, l, schedule);
    tokens += record.tokens;
  }
  const std::vector<std::byte> end = reader.section_exact(kEndTag, 8, "the end (END)");
  ByteReader end_fields(end, source);
  if (const std::uint64_t total = end_fields.u64("token total"); total != tokens) {
    end_fields.fail("the end section counts " + std::to_string(total) + " tokens, the layers hold " +
                    std::to_string(tokens));
  }
}

/**
 * Opens `path` for writing (replacing it) and calls write(stream, name), name being the path quoted.
 * @throws Error(io_error) naming the path when it cannot be opened; what write throws.
 */
template <class Write>
void write_file(const std::filesystem::path& path, Write&& write) {
  // Appended, not "'" + path.string(): GCC 12 at -O3 warns (-Wrestrict, a false positive) on
  // operator+(const char*, std::string&&) once this is inlined into a caller.
  std::string name(1, '\'');
  name.append(path.string()).push_back('\'');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  require(static_cast<bool>(out), Errc::io_error, "cannot open " + name + " for writing");
  write(out, name);
}

/**
 * Opens `path` and returns read(stream, path as text); the file must end where read() stopped.
 * @throws Error(io_error) when it cannot be opened, Error(corrupt_data) for bytes after what
 *         read() consumed; what read throws.
 */
template <class Read>
auto read_file(const std::filesystem::path& path, Read&& read) {
  std::ifstream in(path, std::ios::binary);
  require(static_cast<bool>(in), Errc::io_error, "cannot open '" + path.string() + "'");
  const std::string source = path.string();
  auto result = read(in, std::string_view(source));
  require(in.peek() == std::ifstream::traits_type::eof(), Errc::corrupt_data,
          source + ": unexpected bytes after the end of the file's last section");
  return result;
}

}  // namespace detail
}  // namespace kvbits
