// SPDX-License-Identifier: MIT
#pragma once

#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>

#include "kvbits/core/error.hpp"

namespace kvbits::eval {

/// The path that names standard output in --json, --csv and the like.
inline constexpr std::string_view kStdoutPath = "-";

/**
 * Writes `text` to the file `path` (replacing it), or to standard output when path is "-".
 * @throw Error(io_error) when the file cannot be written.
 */
inline void write_output(const std::string& path, std::string_view text) {
  if (path == kStdoutPath) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.flush();
  kvbits::detail::require(static_cast<bool>(out), Errc::io_error, "cannot write " + path);
}

}  // namespace kvbits::eval
