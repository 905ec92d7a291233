// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace kvbits::test {

/// Contents of a golden decode file: the `ids:` line and the unescaped `text:` string.
struct Golden {
  std::vector<std::int32_t> ids;
  std::string text;
};

/**
 * Reads a golden file made of `#` comment lines, `ids: <id> <id> ...` and `text: "<escaped>"`
 * (escapes \n, \t, \", \\). Fails the running test when either line is missing or malformed.
 */
inline Golden read_golden(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  Golden golden;
  bool has_ids = false;
  bool has_text = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("ids:", 0) == 0) {
      std::istringstream numbers(line.substr(4));
      for (std::int32_t id = 0; numbers >> id;) golden.ids.push_back(id);
      REQUIRE(numbers.eof());
      has_ids = true;
    } else if (line.rfind("text:", 0) == 0) {
      const std::size_t open = line.find('"');
      const std::size_t close = line.rfind('"');
      REQUIRE(open != std::string::npos);
      REQUIRE(close > open);
      for (std::size_t i = open + 1; i < close; ++i) {
        if (line[i] != '\\') {
          golden.text.push_back(line[i]);
          continue;
        }
        REQUIRE(i + 1 < close);
        const char escaped = line[++i];
        golden.text.push_back(escaped == 'n' ? '\n' : escaped == 't' ? '\t' : escaped);
      }
      has_text = true;
    }
  }
  INFO("golden file " << path.string() << " needs an 'ids:' and a 'text:' line");
  REQUIRE(has_ids);
  REQUIRE(has_text);
  return golden;
}

}  // namespace kvbits::test
