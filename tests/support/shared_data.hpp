// SPDX-License-Identifier: MIT
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

namespace kvbits::test {

/// The shared reference folder: $KVBITS_SHARED_DIR, else the CMake default (../shared).
inline std::filesystem::path shared_dir() {
  if (const char* from_env = std::getenv("KVBITS_SHARED_DIR"); from_env && *from_env) {
    return from_env;
  }
  return KVBITS_SHARED_DIR_DEFAULT;
}

/// Path of a shared file; fails the running test loudly when it is missing,
/// because a silently skipped golden test proves nothing.
inline std::filesystem::path shared_file(const std::string& relative) {
  const auto path = shared_dir() / relative;
  INFO("shared reference file "
       << path.string() << " is missing: set KVBITS_SHARED_DIR or -DKVBITS_SHARED_DIR to the shared folder");
  REQUIRE(std::filesystem::is_regular_file(path));
  return path;
}

}  // namespace kvbits::test
