// SPDX-License-Identifier: MIT
#pragma once

#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "kvbits/core/error.hpp"

namespace kvbits::model {

/// The line that ends a story in TinyStories-style text files.
inline constexpr std::string_view kStorySeparator = "<|endoftext|>";

/**
 * Splits a TinyStories-style text into stories. A story is every line before a line that is
 * exactly `<|endoftext|>`, joined with '\n'; the newline that ends its last line belongs to the
 * separator, so a story neither starts nor ends with a newline of the file's framing. Paragraph
 * breaks inside a story are kept. Text after the last separator counts as a final story; stories
 * with no characters are dropped. A '\r' before a line end is removed.
 * @param text the whole file
 * @return the stories in file order
 */
inline std::vector<std::string> split_stories(std::string_view text) {
  std::vector<std::string> stories;
  std::string current;
  bool has_line = false;
  auto finish = [&] {
    if (!current.empty()) stories.push_back(current);
    current.clear();
    has_line = false;
  };
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line == kStorySeparator) {
      finish();
      continue;
    }
    if (has_line) current.push_back('\n');
    current.append(line);
    has_line = true;
  }
  finish();
  return stories;
}

/**
 * Reads a file and splits it with split_stories.
 * @throw Error(io_error) when the file cannot be read.
 */
inline std::vector<std::string> read_stories(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  kvbits::detail::require(static_cast<bool>(in), Errc::io_error, "cannot open text file " + path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return split_stories(text);
}

}  // namespace kvbits::model
