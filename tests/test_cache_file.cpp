// SPDX-License-Identifier: MIT
// Cache files: save/load round trips that continue bit-identically for every kind of policy,
// and every way a file can be broken (truncated, flipped, re-checksummed with impossible
// values, made for another cache) failing with a clear error that leaves the cache untouched.
#include "kvbits/cache/cache_file.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "kvbits/kvbits.hpp"
#include "kvbits/policy/policy_variant.hpp"
#include "support/cache_file_cases.hpp"
#include "support/fuzz_corpus.hpp"
#include "support/require_error.hpp"

namespace {

using kvbits::AttentionStats;
using kvbits::BitDecision;
using kvbits::CacheOptions;
using kvbits::Errc;
using kvbits::QuantizedKVCache;
using kvbits::detail::SplitMix64;
using kvbits::test::as_version1;
using kvbits::test::fill_cache;
using kvbits::test::load_le;
using kvbits::test::recompute_checksums;
using kvbits::test::require_error;
using kvbits::test::saved_bytes;
using kvbits::test::shape_options;
using kvbits::test::store_le;

constexpr std::size_t kPreambleBytes = 12;  // magic and version

/// A section of a cache file as the test finds it: where its frame starts, its tag and payload size.
struct Section {
  std::string tag;
  std::size_t start;    // offset of its tag
  std::size_t payload;  // offset of its payload
  std::size_t length;   // payload bytes
  [[nodiscard]] std::size_t end() const { return payload + length + 8; }
};

std::vector<Section> sections_of(const std::string& file) {
  std::vector<Section> sections;
  for (std::size_t at = kPreambleBytes; at < file.size();) {
    Section s{file.substr(at, 4), at, at + 12, static_cast<std::size_t>(load_le(file, at + 4, 8))};
    sections.push_back(s);
    at = s.end();
  }
  REQUIRE(sections.back().end() == file.size());
  return sections;
}

/// The n-th section with `tag` (0 = the first).
Section find_section(const std::string& file, const std::string& tag, std::size_t n = 0) {
  for (const Section& s : sections_of(file)) {
    if (s.tag == tag && n-- == 0) return s;
  }
  FAIL("no section " << tag);
  return {};
}

/// The STRM sections of layer `layer`, in stream order (the float area last).
std::vector<Section> layer_streams(const std::string& file, std::size_t layer) {
  std::vector<Section> streams;
  std::size_t layers_seen = 0;
  for (const Section& s : sections_of(file)) {
    if (s.tag == "LAYR") ++layers_seen;
    if (s.tag == "STRM" && layers_seen == layer + 1) streams.push_back(s);
  }
  return streams;
}

/// A copy of `file` with one section's payload replaced (length and checksum rewritten).
std::string with_payload(const std::string& file, const Section& s, const std::string& payload) {
  std::string edited = file.substr(0, s.payload) + payload + file.substr(s.payload + s.length);
  store_le(edited, s.start + 4, payload.size(), 8);
  recompute_checksums(edited);
  return edited;
}

template <class Cache>
void load_bytes(Cache& cache, const std::string& file) {
  std::istringstream in(file, std::ios::binary);
  cache.load(in);
}

template <class Cache>
std::vector<float> attend_all(const Cache& cache, const std::vector<float>& q) {
  std::vector<float> out;
  std::vector<float> head(q.size());
  for (std::size_t l = 0; l < cache.options().layers; ++l) {
    if (cache.size(l) == 0) continue;
    std::vector<float> received(cache.size(l));
    cache.attend(l, q, head, received);
    out.insert(out.end(), head.begin(), head.end());
    out.insert(out.end(), received.begin(), received.end());
  }
  return out;
}

std::vector<float> query_for(const CacheOptions& o, std::uint64_t seed) {
  SplitMix64 random(seed);
  std::vector<float> q(kvbits::test::kFillGroup * o.kv_heads * o.head_dim);
  for (float& x : q) x = kvbits::test::fill_value(random, 3.0f);
  return q;
}

void check_same_memory(const kvbits::LayerMemory& a, const kvbits::LayerMemory& b) {
  CHECK(a.tokens == b.tokens);
  CHECK(a.residual_tokens == b.residual_tokens);
  CHECK(a.code_bytes == b.code_bytes);
  CHECK(a.metadata_bytes == b.metadata_bytes);
  CHECK(a.residual_bytes == b.residual_bytes);
  CHECK(a.index_bytes == b.index_bytes);
  CHECK(a.bytes == b.bytes);
  CHECK(a.average_bits == b.average_bits);
  CHECK(a.histogram.key == b.histogram.key);
  CHECK(a.histogram.value == b.histogram.value);
}

/// Everything a caller can observe of two caches is equal: tokens, widths, decoded K/V,
/// statistics, notes, scales and memory (reserved bytes aside: spare pages are not saved).
template <class Cache>
void check_same_contents(const Cache& restored, const Cache& original) {
  const CacheOptions& o = original.options();
  const std::size_t width = o.kv_heads * o.head_dim;
  std::vector<float> k1(width), v1(width), k2(width), v2(width);
  for (std::size_t l = 0; l < o.layers; ++l) {
    REQUIRE(restored.size(l) == original.size(l));
    CHECK(std::vector<float>(restored.key_scales(l).begin(), restored.key_scales(l).end()) ==
          std::vector<float>(original.key_scales(l).begin(), original.key_scales(l).end()));
    for (std::size_t t = 0; t < original.size(l); ++t) {
      INFO("layer " << l << " token " << t);
      CHECK(restored.token_bits(l, t) == original.token_bits(l, t));
      CHECK(restored.in_residual(l, t) == original.in_residual(l, t));
      CHECK(restored.awaits_decision(l, t) == original.awaits_decision(l, t));
      restored.read_token(l, t, k1, v1);
      original.read_token(l, t, k2, v2);
      CHECK(k1 == k2);
      CHECK(v1 == v2);
      const AttentionStats a = restored.attention_stats(l, t);
      const AttentionStats b = original.attention_stats(l, t);
      CHECK(a.queries == b.queries);
      CHECK(a.samples == b.samples);
      CHECK(a.sum == b.sum);
      CHECK(a.sum_squares == b.sum_squares);
      CHECK(a.max == b.max);
      CHECK(a.last == b.last);
    }
  }
  const kvbits::MemoryReport a = restored.memory();
  const kvbits::MemoryReport b = original.memory();
  check_same_memory(a.total, b.total);
  for (std::size_t l = 0; l < o.layers; ++l) check_same_memory(a.layers[l], b.layers[l]);
  CHECK(restored.bits_per_element() == original.bits_per_element());
}

/**
 * Fills a cache, saves it, loads the file into a cache built with `fresh` (the policy as
 * constructed, so its state must come from the file), then checks the copy is equal and
 * continues bit-identically for `more` steps.
 */
template <class Policy>
void check_round_trip(const CacheOptions& options, const Policy& fresh, std::size_t tokens, std::size_t more,
                      bool calibrate = false) {
  using Cache = QuantizedKVCache<Policy>;
  Cache original(options, fresh);
  SplitMix64 random(42);
  if (calibrate) kvbits::test::calibrate_cache(original, random);
  fill_cache(original, tokens, random);
  const std::string file = saved_bytes(original);

  Cache restored(options, fresh);
  load_bytes(restored, file);
  CHECK(saved_bytes(restored) == file);  // every byte of state came back
  check_same_contents(restored, original);
  const std::vector<float> q = query_for(options, 7);
  CHECK(attend_all(restored, q) == attend_all(original, q));

  // Both continue the same way: same widths, demotions, statistics and policy draws.
  SplitMix64 a(99);
  SplitMix64 b(99);
  CHECK(fill_cache(restored, more, a) == fill_cache(original, more, b));
  check_same_contents(restored, original);
  CHECK(saved_bytes(restored) == saved_bytes(original));
}

/// A small tiered cache (window, sinks, statistics, demotions) and its file.
struct SmallFile {
  kvbits::test::TieredFileCache cache{kvbits::test::tiered_file_options(),
                                      kvbits::test::tiered_file_policy()};
  std::string file;
  SmallFile() {
    SplitMix64 random(5);
    fill_cache(cache, 12, random);
    file = saved_bytes(cache);
  }
};

/// Loading `file` into `cache` fails with `code` and a message containing `message`, and
/// leaves the cache exactly as it was.
template <class Cache>
void require_rejected(Cache& cache, const std::string& file, Errc code, const std::string& message) {
  const std::string before = saved_bytes(cache);
  const std::size_t reserved = cache.memory().total.reserved_bytes;
  require_error([&] { load_bytes(cache, file); }, code, message);
  CHECK(saved_bytes(cache) == before);
  CHECK(cache.memory().total.reserved_bytes == reserved);
}

}  // namespace

TEST_CASE("the word checksum is the same however its input is split", "[cache_file]") {
  std::vector<std::byte> bytes(301);
  SplitMix64 random(3);
  for (std::byte& b : bytes) b = static_cast<std::byte>(random.next() & 0xffU);
  for (std::size_t n = 0; n <= bytes.size(); n += 7) {
    const auto data = std::span<const std::byte>(bytes).first(n);
    kvbits::detail::WordChecksum whole;
    whole.update(data);
    kvbits::detail::WordChecksum pieces;
    for (std::size_t at = 0; at < n;) {
      const std::size_t piece = std::min<std::size_t>(random.below(40), n - at);
      pieces.update(data.subspan(at, piece));
      at += piece;
    }
    INFO("length " << n);
    CHECK(pieces.value() == whole.value());
  }
  // Zero padding of the last block does not hide the length.
  kvbits::detail::WordChecksum three;
  three.update(std::span<const std::byte>(bytes).first(3));
  kvbits::detail::WordChecksum padded;
  std::vector<std::byte> extended(bytes.begin(), bytes.begin() + 3);
  extended.resize(8, std::byte{0});
  padded.update(extended);
  CHECK(three.value() != padded.value());
}

TEST_CASE("policies describe their configuration, not their state", "[cache_file]") {
  CHECK(kvbits::StaticPolicy{{8, 4}}.describe() == "static:8/4");
  CHECK(kvbits::parse_tiers("4=16/16,*=4/2,v+=0.5").describe() == "tiers:4=16/16,*=4/2,v+=0.5");
  const auto mix = kvbits::parse_width_mix("4/2:1,8/4:3");
  CHECK(kvbits::RandomPolicy(mix, 5).describe() == "random:4/2:1,8/4:3");
  CHECK(kvbits::RandomPolicy(mix, 6).describe() == kvbits::RandomPolicy(mix, 5).describe());
  kvbits::RulePolicy rule;
  rule.protected_positions = 4;
  rule.protected_ids = {13, 29};
  rule.feature_rules = {{0, 2.5f, {8, 4}}};
  CHECK(rule.describe() == "rule:4/4,positions<4=8/8,ids=13 29=8/8,f0>2.5=8/4");
  const kvbits::BudgetPolicy<kvbits::StaticPolicy> budget(kvbits::StaticPolicy{{8, 8}});
  CHECK(budget.describe() ==
        "budget:target=4.5,kp=16,ki=0.1,band=0.25,protect=8,ages=3,rungs=2,lowering=ladder,"
        "ladder=2/2 3/2 3/3 4/3 4/4 5/4 5/5 6/5 6/6 8/6 8/8 16/8 16/16(static:8/8)");
  using Variant = kvbits::PolicyVariant<kvbits::StaticPolicy, kvbits::RandomPolicy>;
  CHECK(kvbits::policy_description(Variant(kvbits::StaticPolicy{{4, 4}})) == "static:4/4");
  // A policy without describe() is described by nothing (and matched by its ages and statistics).
  struct Plain {
    BitDecision decide(const kvbits::TokenInfo&) const { return {4, 4}; }
  };
  CHECK(kvbits::policy_description(Plain{}).empty());
}

TEST_CASE("a static-policy cache round-trips bit-exactly", "[cache_file]") {
  CacheOptions o = shape_options(3, 2, 32, 80);
  o.residual_window = 4;
  o.sink_tokens = 2;
  o.key.group_size = 16;
  o.value.group_size = 8;
  check_round_trip(o, kvbits::StaticPolicy{{8, 4}}, 40, 20);
}

TEST_CASE("a tiered cache with demoted tokens and statistics round-trips bit-exactly", "[cache_file]") {
  CacheOptions o = shape_options(2, 2, 32, 120);
  o.residual_window = 3;
  o.sink_tokens = 2;
  o.key.transform = kvbits::KeyTransform::hadamard;
  const kvbits::TieredPolicy policy = kvbits::parse_tiers("4=16/16,8=8/8,16=6/4,*=4/2,k+=0.05");
  REQUIRE(policy.wants_attention_stats());
  check_round_trip(o, policy, 60, 40);

  // The saved cache holds tokens at every tier, so demoted ones were saved.
  kvbits::test::TieredFileCache probe(o, policy);
  SplitMix64 random(42);
  fill_cache(probe, 60, random);
  const kvbits::MemoryReport m = probe.memory();
  CHECK(m.total.histogram.key[kvbits::bits_index(16)] > 0);
  CHECK(m.total.histogram.key[kvbits::bits_index(8)] > 0);
  CHECK(m.total.histogram.key[kvbits::bits_index(6)] + m.total.histogram.key[kvbits::bits_index(4)] > 0);
  CHECK(m.total.histogram.value[kvbits::bits_index(2)] > 0);
}

TEST_CASE("a random-policy cache round-trips with its generator's state", "[cache_file]") {
  CacheOptions o = shape_options(2, 1, 16, 100);
  o.key.transform = kvbits::KeyTransform::channel_scale;
  const kvbits::RandomPolicy policy(kvbits::parse_width_mix("2/2:1,4/2:1,8/4:1,16/8:1,32/32:0.2"), 11);
  check_round_trip(o, policy, 50, 30, true);

  // The state matters: a cache restored without it would draw from the seed again.
  QuantizedKVCache<kvbits::RandomPolicy> original(o, policy);
  SplitMix64 random(1);
  fill_cache(original, 20, random);
  QuantizedKVCache<kvbits::RandomPolicy> restored(o, policy);
  load_bytes(restored, saved_bytes(original));
  kvbits::RandomPolicy from_seed = policy;
  std::size_t differ_from_seed = 0;
  for (int i = 0; i < 16; ++i) {
    const BitDecision next = original.policy().decide(kvbits::TokenInfo{});
    CHECK(restored.policy().decide(kvbits::TokenInfo{}) == next);
    if (from_seed.decide(kvbits::TokenInfo{}) != next) ++differ_from_seed;
  }
  CHECK(differ_from_seed > 0);
}

TEST_CASE("a budget cache round-trips with its controller's state", "[cache_file]") {
  CacheOptions o = shape_options(2, 2, 16, 160);
  o.residual_window = 2;
  o.value.scheme = kvbits::Scheme::symmetric;
  kvbits::BudgetOptions budget;
  budget.target_bits_per_element = 5.0;
  budget.protect_age = 4;
  const kvbits::BudgetPolicy<kvbits::TieredPolicy> policy(kvbits::parse_tiers("2=16/16,*=8/8"), budget);
  check_round_trip(o, policy, 80, 40);

  QuantizedKVCache<kvbits::BudgetPolicy<kvbits::TieredPolicy>> original(o, policy);
  SplitMix64 random(2);
  fill_cache(original, 80, random);
  REQUIRE(original.policy().offset() > 0.0);  // the controller has moved
  QuantizedKVCache<kvbits::BudgetPolicy<kvbits::TieredPolicy>> restored(o, policy);
  load_bytes(restored, saved_bytes(original));
  CHECK(restored.policy().offset() == original.policy().offset());
}

TEST_CASE("a policy variant round-trips the state of the policy it holds", "[cache_file]") {
  using Variant = kvbits::PolicyVariant<kvbits::StaticPolicy, kvbits::RandomPolicy>;
  CacheOptions o = shape_options(1, 1, 8, 40);
  o.residual_window = 1;
  check_round_trip(o, Variant(kvbits::RandomPolicy(kvbits::parse_width_mix("2/2,8/8"), 3)), 20, 15);
  check_round_trip(o, Variant(kvbits::StaticPolicy{{4, 4}}), 20, 15);
}

TEST_CASE("empty and cleared caches round-trip", "[cache_file]") {
  SmallFile small;
  kvbits::test::TieredFileCache empty(kvbits::test::tiered_file_options(),
                                      kvbits::test::tiered_file_policy());
  const std::string empty_file = saved_bytes(empty);
  load_bytes(small.cache, empty_file);  // replaces the contents
  CHECK(small.cache.size(0) == 0);
  CHECK(small.cache.memory().total.bytes == empty.memory().total.bytes);
  CHECK(saved_bytes(small.cache) == empty_file);

  SmallFile cleared;
  cleared.cache.clear();
  kvbits::test::TieredFileCache restored(kvbits::test::tiered_file_options(),
                                         kvbits::test::tiered_file_policy());
  load_bytes(restored, saved_bytes(cleared.cache));
  check_same_contents(restored, cleared.cache);
}

TEST_CASE("a cache file is read to its end and no further", "[cache_file]") {
  SmallFile first;
  kvbits::test::BudgetFileCache second(kvbits::test::budget_file_options(),
                                       kvbits::test::budget_file_policy());
  SplitMix64 random(8);
  kvbits::test::calibrate_cache(second, random);
  fill_cache(second, 10, random);
  std::stringstream stream(std::ios::in | std::ios::out | std::ios::binary);
  first.cache.save(stream);
  second.save(stream);
  stream << "tail";

  kvbits::test::TieredFileCache a(kvbits::test::tiered_file_options(), kvbits::test::tiered_file_policy());
  kvbits::test::BudgetFileCache b(kvbits::test::budget_file_options(), kvbits::test::budget_file_policy());
  a.load(stream);
  b.load(stream);
  std::string rest;
  stream >> rest;
  CHECK(rest == "tail");
  check_same_contents(a, first.cache);
  check_same_contents(b, second);
}

TEST_CASE("saving and loading through a path", "[cache_file]") {
  const auto dir = std::filesystem::temp_directory_path() / "kvbits_test_cache_file";
  std::filesystem::create_directories(dir);
  const auto path = dir / "conversation.kvbcache";
  SmallFile small;
  small.cache.save(path);
  kvbits::test::TieredFileCache restored(kvbits::test::tiered_file_options(),
                                         kvbits::test::tiered_file_policy());
  restored.load(path);
  check_same_contents(restored, small.cache);

  {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << 'x';
  }
  require_error([&] { restored.load(path); }, Errc::corrupt_data, "unexpected bytes after the end");
  require_error([&] { restored.load(dir / "missing.kvbcache"); }, Errc::io_error, "cannot open");
  require_error([&] { small.cache.save(dir); }, Errc::io_error, "cannot open");
  std::filesystem::remove_all(dir);

  std::ostringstream failed;
  failed.setstate(std::ios::badbit);
  require_error([&] { small.cache.save(failed); }, Errc::io_error, "could not write the cache file");
}

TEST_CASE("a truncated cache file is an error that leaves the cache unchanged", "[cache_file]") {
  const SmallFile small;
  SmallFile target;  // different contents from the file's
  SplitMix64 random(77);
  fill_cache(target.cache, 3, random);
  const std::vector<Section> sections = sections_of(small.file);
  const std::size_t header_end = find_section(small.file, "PLCY").end();

  std::vector<std::size_t> cuts;
  for (std::size_t n = 0; n <= header_end; ++n) cuts.push_back(n);  // every byte up to the first layer
  for (const Section& s : sections) {
    cuts.push_back(s.start);      // at a section boundary
    cuts.push_back(s.payload);    // after a frame
    cuts.push_back(s.end() - 8);  // before a checksum
    cuts.push_back(s.end() - 1);  // inside a checksum
  }
  for (std::size_t n = header_end; n < small.file.size(); n += 13) cuts.push_back(n);  // a sweep
  for (const std::size_t n : cuts) {
    if (n >= small.file.size()) continue;
    INFO("truncated to " << n << " of " << small.file.size() << " bytes");
    require_rejected(target.cache, small.file.substr(0, n), Errc::corrupt_data, "truncated");
  }
  // The whole file loads.
  load_bytes(target.cache, small.file);
  check_same_contents(target.cache, small.cache);
}

TEST_CASE("every flipped byte of a cache file is detected", "[cache_file]") {
  const SmallFile small;
  SmallFile target;
  const std::string before = saved_bytes(target.cache);
  for (std::size_t i = 0; i < small.file.size(); ++i) {
    std::string flipped = small.file;
    flipped[i] = static_cast<char>(flipped[i] ^ (i % 2 == 0 ? 0x01 : 0x80));
    INFO("byte " << i << " of " << small.file.size());
    // The version is outside the checksummed sections: another value is another version.
    const Errc expected = i >= 8 && i < kPreambleBytes ? Errc::unsupported : Errc::corrupt_data;
    try {
      load_bytes(target.cache, flipped);
      FAIL("loaded a file with byte " << i << " flipped");
    } catch (const kvbits::Error& e) {
      CHECK(e.code() == expected);
    }
  }
  CHECK(saved_bytes(target.cache) == before);
}

TEST_CASE("a corrupted section is named in the error", "[cache_file]") {
  const SmallFile small;
  SmallFile target;
  const auto flip = [&](std::size_t offset) {
    std::string file = small.file;
    file[offset] = static_cast<char>(file[offset] ^ 0x10);
    return file;
  };
  require_rejected(target.cache, flip(0), Errc::corrupt_data, "not a kvbits cache file");
  require_rejected(target.cache, flip(8), Errc::unsupported,
                   "cache file version 18; this build reads versions 1 to 2");
  const Section head = find_section(small.file, "HEAD");
  require_rejected(target.cache, flip(head.payload + 3), Errc::corrupt_data,
                   "checksum mismatch in the header");
  require_rejected(target.cache, flip(head.start), Errc::corrupt_data, "expected section 'HEAD'");
  const Section plcy = find_section(small.file, "PLCY");
  require_rejected(target.cache, flip(plcy.end() - 2), Errc::corrupt_data,
                   "checksum mismatch in the policy state");
  const Section layer = find_section(small.file, "LAYR", 1);
  require_rejected(target.cache, flip(layer.payload + layer.length / 2), Errc::corrupt_data,
                   "checksum mismatch in layer 1");
  require_rejected(target.cache, flip(layer.start + 5), Errc::corrupt_data, "layer 1 declares");
  REQUIRE(layer_streams(small.file, 0).size() >= 3);
  const Section stream = layer_streams(small.file, 0)[2];
  require_rejected(target.cache, flip(stream.payload + stream.length - 1), Errc::corrupt_data,
                   "checksum mismatch in layer 0, stream");
  const Section end = find_section(small.file, "END ");
  require_rejected(target.cache, flip(end.payload), Errc::corrupt_data, "checksum mismatch in the end");
}

TEST_CASE("impossible values behind a valid checksum are errors", "[cache_file]") {
  const SmallFile small;
  SmallFile target;
  const std::string& file = small.file;
  const auto edit = [&](std::size_t offset, std::uint64_t value, std::size_t n) {
    std::string edited = file;
    store_le(edited, offset, value, n);
    recompute_checksums(edited);
    return edited;
  };
  const CacheOptions o = kvbits::test::tiered_file_options();
  const Section layer = find_section(file, "LAYR");
  const std::size_t counts = layer.payload + 4 + 8 + 4 + 4;  // u64 tokens per stream
  const std::size_t scales = counts + 8 * kvbits::detail::kStreamCount;
  const std::size_t notes = scales + 4 * o.kv_heads * o.head_dim;

  SECTION("layer fields") {
    require_rejected(target.cache, edit(layer.payload, 1, 4), Errc::corrupt_data,
                     "layer 0 holds the section of layer 1");
    require_rejected(target.cache, edit(layer.payload + 4, o.capacity + 1, 8), Errc::corrupt_data,
                     "more than the capacity");
    require_rejected(target.cache, edit(scales + 4, 0, 4), Errc::corrupt_data,
                     "key scale that is not finite");
    require_rejected(target.cache, edit(scales, 0x7fc00000, 4), Errc::corrupt_data, "key scale");
    require_rejected(target.cache, edit(notes + 12, kvbits::kMaxTokenFeatures + 1, 4), Errc::corrupt_data,
                     "a note with 17 features");
    // One token moved from the float area to the 2/2 stream: counts still sum to the size.
    const std::size_t residual = counts + 8 * kvbits::detail::kResidualStream;
    std::string moved = file;
    store_le(moved, residual, load_le(file, residual, 8) - 1, 8);
    store_le(moved, counts, load_le(file, counts, 8) + 1, 8);
    recompute_checksums(moved);
    require_rejected(target.cache, moved, Errc::corrupt_data, "layer 0's float area holds");
    require_rejected(target.cache, edit(counts, 100, 8), Errc::corrupt_data,
                     "holds more tokens than the layer's");
  }
  SECTION("slot maps") {
    const Section first = find_section(file, "STRM");
    const Section second = find_section(file, "STRM", 1);
    require_rejected(target.cache, edit(first.payload, 3, 4), Errc::corrupt_data, "the section is stream 3");
    require_rejected(target.cache, edit(first.payload + 4, 999, 4), Errc::corrupt_data,
                     "do not hold each of its 12 tokens exactly once");
    const std::uint64_t token = load_le(file, second.payload + 4, 4);
    require_rejected(target.cache, edit(first.payload + 4, token, 4), Errc::corrupt_data, "exactly once");
    // Swap a float-area token with a quantized one: a permutation, but in the wrong places.
    const Section area = layer_streams(file, 0).back();
    REQUIRE(load_le(file, area.payload, 4) == kvbits::detail::kResidualStream);
    std::string swapped = file;
    store_le(swapped, area.payload + 4, token, 4);
    store_le(swapped, second.payload + 4, load_le(file, area.payload + 4, 4), 4);
    recompute_checksums(swapped);
    require_rejected(target.cache, swapped, Errc::corrupt_data, "layer 0: token ");
  }
  SECTION("header, policy state and end") {
    const Section head = find_section(file, "HEAD");
    require_rejected(target.cache, with_payload(file, head, file.substr(head.payload, head.length) + "x"),
                     Errc::corrupt_data, "1 unexpected bytes at the end of HEAD");
    const std::size_t statistics =
        head.payload + head.length - 4 - 4 - kvbits::test::tiered_file_policy().describe().size();
    require_rejected(target.cache, edit(statistics, 2, 4), Errc::corrupt_data, "statistics flag 2");
    const std::size_t widths = head.payload + 8 * kvbits::kCacheFileOptionFields + 4;
    require_rejected(target.cache, edit(widths, 7, 4), Errc::unsupported, "the file's widths (7,3,4");
    // The last option field: a well-formed file of a cache with other (or impossible) pages.
    const std::size_t plane = head.payload + 8 * (kvbits::kCacheFileOptionFields - 1);
    REQUIRE(plane == kvbits::test::kPagePlaneFieldOffset);
    REQUIRE(load_le(file, plane, 8) == 16384);
    require_rejected(target.cache, edit(plane, 32768, 8), Errc::invalid_argument,
                     "with page_plane_bytes 32768, this cache has page_plane_bytes 16384");
    require_rejected(target.cache, edit(plane, 3, 8), Errc::invalid_argument, "with page_plane_bytes 3,");
    const Section end = find_section(file, "END ");
    require_rejected(target.cache, edit(end.payload, 5, 8), Errc::corrupt_data, "counts 5 tokens");
    const Section plcy = find_section(file, "PLCY");
    require_rejected(target.cache, with_payload(file, plcy, "abcd"), Errc::corrupt_data,
                     "4 bytes the policy does not read");
  }
  SECTION("policy state") {
    kvbits::test::BudgetFileCache budget(kvbits::test::budget_file_options(),
                                         kvbits::test::budget_file_policy());
    SplitMix64 random(4);
    kvbits::test::calibrate_cache(budget, random);
    fill_cache(budget, 20, random);
    const std::string budget_file = saved_bytes(budget);
    const Section plcy = find_section(budget_file, "PLCY");
    REQUIRE(plcy.length == 4 * 8);  // integral, offset, diffusion, then the random generator
    std::string out_of_range = budget_file;
    store_le(out_of_range, plcy.payload + 16, std::bit_cast<std::uint64_t>(1.5), 8);
    recompute_checksums(out_of_range);
    require_rejected(budget, out_of_range, Errc::corrupt_data, "outside the controller's range");
    require_rejected(budget, with_payload(budget_file, plcy, budget_file.substr(plcy.payload, 24)),
                     Errc::corrupt_data, "truncated: random policy generator state");
  }
}

TEST_CASE("a file saved from another cache shape or policy is a mismatch", "[cache_file]") {
  const SmallFile small;
  const auto reject = [&](const CacheOptions& options, const kvbits::TieredPolicy& policy,
                          const std::string& message) {
    kvbits::test::TieredFileCache other(options, policy);
    SplitMix64 random(6);
    fill_cache(other, 5, random);
    require_rejected(other, small.file, Errc::invalid_argument, message);
  };
  const CacheOptions o = kvbits::test::tiered_file_options();
  const kvbits::TieredPolicy policy = kvbits::test::tiered_file_policy();
  CacheOptions changed = o;
  changed.head_dim = 16;
  reject(changed, policy, "saved from a cache with head_dim 8, this cache has head_dim 16");
  changed = o;
  changed.layers = 3;
  reject(changed, policy, "with layers 2, this cache has layers 3");
  changed = o;
  changed.capacity = 30;
  reject(changed, policy, "with capacity 24, this cache has capacity 30");
  changed = o;
  changed.residual_window = 3;
  reject(changed, policy, "residual_window");
  changed = o;
  changed.sink_tokens = 0;
  reject(changed, policy, "sink_tokens");
  changed = o;
  changed.key.group_size = 0;
  reject(changed, policy, "key.group_size");
  changed = o;
  changed.key.transform = kvbits::KeyTransform::none;
  reject(changed, policy, "key.transform");
  changed = o;
  changed.value.scheme = kvbits::Scheme::symmetric;
  reject(changed, policy, "value.scheme");
  changed = o;
  changed.page_plane_bytes = 65536;
  reject(changed, policy, "with page_plane_bytes 16384, this cache has page_plane_bytes 65536");
  reject(o, kvbits::parse_tiers("2=16/16,6=8/8,*=4/2,k+=0.1"),
         "with decision ages 2,4, this cache has decision ages 2,6");
  reject(o, kvbits::parse_tiers("2=16/16,4=8/8,*=4/2"),
         "with attention statistics kept, this cache has attention statistics not kept");
  reject(o, kvbits::parse_tiers("2=16/16,4=8/8,*=4/4,k+=0.1"),
         "with policy 'tiers:2=16/16,4=8/8,*=4/2,k+=0.1', this cache has policy "
         "'tiers:2=16/16,4=8/8,*=4/4,k+=0.1'");

  // Another policy type with the same shape.
  QuantizedKVCache<kvbits::StaticPolicy> fixed(o, kvbits::StaticPolicy{{8, 8}});
  require_rejected(fixed, small.file, Errc::invalid_argument,
                   "decision ages 2,4, this cache has decision ages none");
}

TEST_CASE("a cache with 64 KiB page planes round-trips and its file records them", "[cache_file]") {
  CacheOptions o = shape_options(2, 2, 64, 700);
  o.residual_window = 3;
  o.sink_tokens = 1;
  o.page_plane_bytes = 65536;
  // 300 tokens fill more than one 64 KiB page of the 16/16 and 32/32 streams (64 and 128 slots).
  const kvbits::TieredPolicy policy = kvbits::parse_tiers("4=32/32,8=16/16,*=4/4");
  check_round_trip(o, policy, 300, 100);

  QuantizedKVCache<kvbits::TieredPolicy> original(o, policy);
  SplitMix64 random(3);
  fill_cache(original, 40, random);
  const std::string file = saved_bytes(original);
  CHECK(load_le(file, 8, 4) == kvbits::kCacheFileVersion);
  CHECK(load_le(file, kvbits::test::kPagePlaneFieldOffset, 8) == 65536);
  // A cache with the default planes would not continue the same way: the file says so.
  CacheOptions default_planes = o;
  default_planes.page_plane_bytes = kvbits::kDefaultPagePlaneBytes;
  QuantizedKVCache<kvbits::TieredPolicy> other(default_planes, policy);
  require_rejected(other, file, Errc::invalid_argument,
                   "with page_plane_bytes 65536, this cache has page_plane_bytes 16384");
}

TEST_CASE("a version-1 cache file loads as a cache with 16 KiB page planes", "[cache_file]") {
  const SmallFile small;  // the default page planes
  const std::string old = as_version1(small.file);
  REQUIRE(load_le(small.file, 8, 4) == 2);
  REQUIRE(load_le(old, 8, 4) == 1);
  REQUIRE(old.size() == small.file.size() - 8);
  REQUIRE(sections_of(old).size() == sections_of(small.file).size());

  SmallFile target;  // other contents
  load_bytes(target.cache, old);
  CHECK(saved_bytes(target.cache) == small.file);  // saved again as version 2
  check_same_contents(target.cache, small.cache);
  const std::vector<float> q = query_for(kvbits::test::tiered_file_options(), 7);
  CHECK(attend_all(target.cache, q) == attend_all(small.cache, q));

  // Version 1 means 16 KiB planes: a cache with other planes rejects the file by that field.
  CacheOptions large = kvbits::test::tiered_file_options();
  large.page_plane_bytes = 65536;
  kvbits::test::TieredFileCache other(large, kvbits::test::tiered_file_policy());
  require_rejected(other, old, Errc::invalid_argument,
                   "with page_plane_bytes 16384, this cache has page_plane_bytes 65536");

  // A version-2 file labelled version 1 (and the reverse) leaves HEAD's fields misread: corrupt.
  std::string relabelled = small.file;
  store_le(relabelled, 8, 1, 4);
  // Read as version 1, the page plane (16384) is taken for the width count.
  require_rejected(target.cache, relabelled, Errc::corrupt_data, "width count 16384 cannot fit in HEAD");
  relabelled = old;
  store_le(relabelled, 8, 2, 4);
  // Read as version 2, HEAD's later fields shift by 8 bytes until one is impossible.
  require_rejected(target.cache, relabelled, Errc::corrupt_data, "statistics flag 2 is not 0 or 1");

  // Truncated anywhere up to the first layer, or past it, a version-1 file is corrupt.
  const std::size_t header_end = find_section(old, "PLCY").end();
  for (std::size_t n = 0; n < old.size(); n += n < header_end ? 1 : 29) {
    INFO("version-1 file truncated to " << n << " of " << old.size() << " bytes");
    require_rejected(target.cache, old.substr(0, n), Errc::corrupt_data, "truncated");
  }
}

TEST_CASE("cache files seed the cache-file fuzzer", "[cache_file]") {
  // Valid files of the fuzzer's caches, and broken ones that must stay broken.
  kvbits::test::TieredFileCache tiered(kvbits::test::tiered_file_options(),
                                       kvbits::test::tiered_file_policy());
  kvbits::test::BudgetFileCache budget(kvbits::test::budget_file_options(),
                                       kvbits::test::budget_file_policy());
  SplitMix64 random(2024);
  kvbits::test::calibrate_cache(budget, random);
  const auto save = [](const std::string& name, const std::string& file) {
    const auto* begin = reinterpret_cast<const std::byte*>(file.data());
    kvbits::test::save_corpus("cache_file", name, std::vector<std::byte>(begin, begin + file.size()));
  };
  save("tiered_empty", saved_bytes(tiered));
  save("budget_empty", saved_bytes(budget));
  fill_cache(tiered, 9, random);
  fill_cache(budget, 14, random);
  const std::string tiered_file = saved_bytes(tiered);
  const std::string budget_file = saved_bytes(budget);
  save("tiered_9_tokens", tiered_file);
  save("budget_14_tokens", budget_file);
  save("tiered_9_tokens_version1", as_version1(tiered_file));

  kvbits::test::TieredFileCache tiered_copy(kvbits::test::tiered_file_options(),
                                            kvbits::test::tiered_file_policy());
  load_bytes(tiered_copy, tiered_file);
  kvbits::test::BudgetFileCache budget_copy(kvbits::test::budget_file_options(),
                                            kvbits::test::budget_file_policy());
  load_bytes(budget_copy, budget_file);
  CHECK(saved_bytes(budget_copy) == budget_file);

  for (const std::string& tag : {std::string("PLCY"), std::string("STRM")}) {
    const std::size_t cut = find_section(tiered_file, tag).payload + 3;
    save("tiered_truncated_in_" + tag, tiered_file.substr(0, cut));
    require_rejected(tiered_copy, tiered_file.substr(0, cut), Errc::corrupt_data, "truncated");
  }
  std::string flipped = budget_file;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x04);
  save("budget_flipped", flipped);
  require_rejected(budget_copy, flipped, Errc::corrupt_data, "checksum mismatch");
}
