// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "kvbits/core/error.hpp"
#include "kvbits/features/unigram_table.hpp"
#include "kvbits/policy/policy_text.hpp"

namespace kvbits {

/**
 * Unigram table text format, version 1:
 * ```
 * kvbits-unigram 1
 * <vocab_size> <total> <smoothing>
 * <count of id 0>
 * ...
 * <count of id vocab_size - 1>
 * ```
 * One value per line, single spaces on line 2, '\n' line ends (a '\r' before
 * it is tolerated). `total` must equal the sum of the counts; nothing may follow
 * the last count.
 */
inline constexpr std::string_view kUnigramMagic = "kvbits-unigram";
inline constexpr int kUnigramVersion = 1;  ///< the version this build writes and reads

/**
 * Writes `table` in the unigram text format.
 * @param table the table to write.
 * @param out the stream; its state is checked after writing.
 * @throws Error(io_error) when the stream fails.
 */
inline void write_unigram_table(const UnigramTable& table, std::ostream& out) {
  out << kUnigramMagic << ' ' << kUnigramVersion << '\n'
      << table.vocab_size() << ' ' << table.total() << ' ' << detail::format_number(table.smoothing())
      << '\n';
  for (const std::uint64_t count : table.counts()) out << count << '\n';
  out.flush();
  detail::require(static_cast<bool>(out), Errc::io_error, "could not write the unigram table");
}

/**
 * Reads a table in the unigram text format, checking every line.
 * @param in the stream, positioned at the magic line.
 * @return the table.
 * @throws Error(corrupt_data) naming the line that breaks the format;
 *         Error(unsupported) for another format version.
 */
inline UnigramTable read_unigram_table(std::istream& in) {
  std::size_t line_number = 0;
  std::string line;
  const auto fail = [&line_number](const std::string& what) -> Error {
    return Error(Errc::corrupt_data, "unigram table line " + std::to_string(line_number) + ": " + what);
  };
  const auto next_line = [&]() -> bool {
    ++line_number;  // counted even at the end, so errors name the missing line
    if (!std::getline(in, line)) return false;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  };

  if (!next_line()) throw fail("empty input, expected '" + std::string(kUnigramMagic) + " 1'");
  const std::string_view header = line;
  if (!header.starts_with(std::string(kUnigramMagic) + ' ')) {
    throw fail("not a unigram table: expected '" + std::string(kUnigramMagic) + " 1'");
  }
  const std::optional<int> version = detail::parse_number<int>(header.substr(kUnigramMagic.size() + 1));
  if (!version) throw fail("unreadable version '" + line + "'");
  if (*version != kUnigramVersion) {
    throw Error(Errc::unsupported, "unigram table version " + std::to_string(*version) +
                                       ", this build reads " + std::to_string(kUnigramVersion));
  }

  if (!next_line()) throw fail("missing '<vocab_size> <total> <smoothing>'");
  const std::vector<std::string_view> fields = detail::split(line, ' ');
  const auto vocab_size = fields.size() == 3 ? detail::parse_number<std::size_t>(fields[0]) : std::nullopt;
  const auto total = fields.size() == 3 ? detail::parse_number<std::uint64_t>(fields[1]) : std::nullopt;
  const auto smoothing = fields.size() == 3 ? detail::parse_number<double>(fields[2]) : std::nullopt;
  if (!vocab_size || !total || !smoothing) {
    throw fail("expected '<vocab_size> <total> <smoothing>', got '" + line + "'");
  }
  if (*vocab_size == 0) throw fail("vocabulary size must be > 0");

  // Grown line by line rather than reserved: a corrupt vocab_size must not allocate.
  std::vector<std::uint64_t> counts;
  std::uint64_t sum = 0;
  while (counts.size() < *vocab_size) {
    if (!next_line()) {
      throw fail("file ends after " + std::to_string(counts.size()) + " of " + std::to_string(*vocab_size) +
                 " counts");
    }
    const std::optional<std::uint64_t> count = detail::parse_number<std::uint64_t>(line);
    if (!count) throw fail("expected a count, got '" + line + "'");
    if (*count > *total - sum) throw fail("counts exceed the declared total " + std::to_string(*total));
    sum += *count;
    counts.push_back(*count);
  }
  if (sum != *total) {
    throw fail("counts sum to " + std::to_string(sum) + " but the header declares " + std::to_string(*total));
  }
  if (next_line()) throw fail("unexpected data after the last count: '" + line + "'");
  try {
    return UnigramTable(std::move(counts), *smoothing);
  } catch (const Error& error) {
    throw Error(Errc::corrupt_data, std::string("unigram table header: ") + error.what());
  }
}

/**
 * Saves `table` to a file in the unigram text format.
 * @throws Error(io_error) naming the path when it cannot be written.
 */
inline void save_unigram_table(const UnigramTable& table, const std::filesystem::path& path) {
  std::ofstream out(path, std::ios::binary);
  detail::require(static_cast<bool>(out), Errc::io_error, "cannot open '" + path.string() + "' for writing");
  write_unigram_table(table, out);
}

/**
 * Loads a table saved by save_unigram_table.
 * @throws Error(io_error) when the file cannot be opened; the errors of read_unigram_table otherwise.
 */
inline UnigramTable load_unigram_table(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  detail::require(static_cast<bool>(in), Errc::io_error, "cannot open '" + path.string() + "'");
  return read_unigram_table(in);
}

}  // namespace kvbits
