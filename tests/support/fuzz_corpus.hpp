// SPDX-License-Identifier: MIT
#pragma once

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace kvbits::test {

/**
 * Writes `bytes` into tests/fuzz/corpus/<target>/<name> when KVBITS_WRITE_FUZZ_CORPUS=1, so a
 * committed fuzz corpus is regenerated from the same cases the tests check.
 */
inline void save_corpus(std::string_view target, const std::string& name,
                        const std::vector<std::byte>& bytes) {
  const char* flag = std::getenv("KVBITS_WRITE_FUZZ_CORPUS");
  if (flag == nullptr || std::string_view(flag) != "1") return;
  const auto dir = std::filesystem::path(KVBITS_TESTS_DIR) / "fuzz" / "corpus" / target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  INFO("writing corpus file " << (dir / name).string());
  REQUIRE(out.good());
}

}  // namespace kvbits::test
