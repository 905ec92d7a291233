// SPDX-License-Identifier: MIT
// libFuzzer target for the cache-file loader: any input must either load or throw
// kvbits::Error and leave the destination cache as it was; a loaded cache must save back to
// exactly the input's bytes (a version-1 input: to its version-2 form) and keep working
// (attend, read_token, append with its decisions).
// Each input is tried twice, as given and with every section's checksum recomputed, so
// mutations also reach the checks behind the checksums, and into both caches of
// tests/support/cache_file_cases.hpp, whose files tests/test_cache_file.cpp writes as the seed
// corpus (KVBITS_WRITE_FUZZ_CORPUS=1).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "../support/cache_file_cases.hpp"
#include "kvbits/core/error.hpp"
#include "kvbits/core/random.hpp"

namespace {

// A destination with tokens of its own, and its file, built once.
template <class Cache>
struct Destination {
  Cache cache;
  std::string file;
  explicit Destination(Cache filled) : cache(std::move(filled)), file(kvbits::test::saved_bytes(cache)) {}
};

kvbits::test::TieredFileCache filled_tiered() {
  kvbits::test::TieredFileCache cache(kvbits::test::tiered_file_options(),
                                      kvbits::test::tiered_file_policy());
  kvbits::detail::SplitMix64 random(1);
  kvbits::test::fill_cache(cache, 4, random);
  return cache;
}

kvbits::test::BudgetFileCache filled_budget() {
  kvbits::test::BudgetFileCache cache(kvbits::test::budget_file_options(),
                                      kvbits::test::budget_file_policy());
  kvbits::detail::SplitMix64 random(2);
  kvbits::test::calibrate_cache(cache, random);
  kvbits::test::fill_cache(cache, 5, random);
  return cache;
}

template <class Cache>
void try_load(const Destination<Cache>& destination, const std::string& input) {
  Cache cache = destination.cache;
  std::istringstream in(input, std::ios::binary);
  try {
    cache.load(in);
  } catch (const kvbits::Error& e) {
    if (std::string(e.what()).empty()) std::abort();                         // every error explains itself
    if (kvbits::test::saved_bytes(cache) != destination.file) std::abort();  // and changes nothing
    return;
  }
  // Outside the try: an exception from here on is a bug and terminates the run.
  const std::string saved = kvbits::test::saved_bytes(cache);
  const bool version1 = kvbits::test::load_le(input, 8, 4) == 1;  // loaded, so 12 bytes are there
  if (input.compare(0, static_cast<std::size_t>(in.tellg()),
                    version1 ? kvbits::test::as_version1(saved) : saved) != 0)
    std::abort();
  const kvbits::CacheOptions& o = cache.options();
  const std::size_t width = o.kv_heads * o.head_dim;
  std::vector<float> k(width), v(width);
  bool room = true;
  for (std::size_t l = 0; l < o.layers; ++l) {
    for (std::size_t t = 0; t < cache.size(l); ++t) cache.read_token(l, t, k, v);
    room = room && cache.size(l) < o.capacity;
  }
  kvbits::detail::SplitMix64 random(3);
  if (!room) return;
  try {
    kvbits::test::fill_cache(cache, 1, random);
  } catch (const kvbits::Error& e) {
    // A file may hold key channel scales that push ordinary keys past the float range: append
    // must then refuse the token with non_finite_input (test_errors checks it changes nothing).
    if (e.code() != kvbits::Errc::non_finite_input) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Destination<kvbits::test::TieredFileCache> tiered(filled_tiered());
  static const Destination<kvbits::test::BudgetFileCache> budget(filled_budget());
  std::string input(reinterpret_cast<const char*>(data), size);
  for (int pass = 0; pass < 2; ++pass) {
    try_load(tiered, input);
    try_load(budget, input);
    kvbits::test::recompute_checksums(input);
  }
  return 0;
}
