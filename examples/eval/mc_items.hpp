// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eval/sentences.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits::eval {

/// Choices per multiple-choice item: the true ending and three drawn from other documents.
inline constexpr std::size_t kChoices = 4;

/// One multiple-choice item: which ending continues the context?
struct McItem {
  std::size_t story = 0;                      ///< index of the source document in its file
  std::string context;                        ///< the document's first sentences, joined by spaces
  std::array<std::string, kChoices> endings;  ///< candidate next sentences
  std::size_t answer = 0;                     ///< index of the true ending in `endings`

  friend bool operator==(const McItem&, const McItem&) = default;
};

/// The rule that turns documents into items (see build_mc_items).
struct McBuildOptions {
  std::uint64_t seed = 1;                 ///< std::mt19937_64 seed of the distractor and slot draws
  std::size_t min_context_sentences = 2;  ///< sentences before the first ending of a document
  std::size_t min_ending_words = 4;       ///< shorter sentences are neither endings nor distractors
};

/// The first line of an item file; the number is the format version.
inline constexpr std::string_view kMcItemsHeader = "kvbits-mc-items 1";

namespace detail {

// A uniform index in [0, n) from the engine's 64-bit outputs, by rejection so that no index is
// favoured; written out because std::uniform_int_distribution differs between standard libraries.
inline std::size_t uniform_index(std::mt19937_64& engine, std::size_t n) {
  const auto range = static_cast<std::uint64_t>(n);
  const std::uint64_t threshold = (0 - range) % range;  // 2^64 mod n
  for (;;) {
    const std::uint64_t x = engine();
    if (x >= threshold) return static_cast<std::size_t>(x % range);
  }
}

// A sentence that may end an item: where it is and what it says.
struct EndingCandidate {
  std::size_t story = 0;     // document index
  std::size_t sentence = 0;  // index of the sentence in its document
  std::string text;
};

inline std::string join_sentences(std::span<const std::string> sentences) {
  std::string out;
  for (const std::string& s : sentences) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

}  // namespace detail

/**
 * Builds multiple-choice items from documents, deterministically.
 *
 * Each document is split by split_sentences. Sentence k (counted from 0) of a document with at
 * least `min_context_sentences` sentences before it and at least `min_ending_words` words is an
 * ending; each ending makes one item whose context is sentences 0 .. k-1 joined by single spaces
 * and whose true choice is sentence k. Items come in document order, then sentence order.
 *
 * The three other choices are endings of other documents: for each item in turn, an index into
 * the list of all endings (document order) is drawn uniformly from a std::mt19937_64 seeded with
 * `seed` (detail::uniform_index), and rejected when its document is the item's or its text equals
 * the true ending or a choice already drawn; up to 1000 draws per choice. Then one more draw
 * picks the slot (0..3) of the true ending, and the three distractors fill the others in the order
 * drawn. The same documents and options give the same items on every platform.
 *
 * @param stories the documents (read_stories)
 * @param options the rule's parameters and seed
 * @return every item the rule yields
 * @throw Error(invalid_argument) when the documents are too few or too alike to draw three
 *        distinct distractors for an item.
 */
inline std::vector<McItem> build_mc_items(std::span<const std::string> stories,
                                          const McBuildOptions& options) {
  std::vector<detail::EndingCandidate> endings;
  for (std::size_t s = 0; s < stories.size(); ++s) {
    const std::vector<std::string> sentences = split_sentences(stories[s]);
    for (std::size_t k = options.min_context_sentences; k < sentences.size(); ++k) {
      if (count_words(sentences[k]) >= options.min_ending_words) endings.push_back({s, k, sentences[k]});
    }
  }
  constexpr std::size_t kMaxDraws = 1000;
  std::mt19937_64 engine(options.seed);
  std::vector<McItem> items;
  items.reserve(endings.size());
  std::vector<std::string> sentences;
  std::size_t sentences_of = stories.size();  // the document `sentences` holds
  for (const detail::EndingCandidate& truth : endings) {
    if (sentences_of != truth.story) {
      sentences = split_sentences(stories[truth.story]);
      sentences_of = truth.story;
    }
    McItem item;
    item.story = truth.story;
    item.context = detail::join_sentences(std::span<const std::string>(sentences).first(truth.sentence));
    std::array<const std::string*, kChoices - 1> drawn{};
    for (std::size_t d = 0; d < drawn.size(); ++d) {
      for (std::size_t attempt = 0;; ++attempt) {
        kvbits::detail::require(attempt < kMaxDraws, Errc::invalid_argument,
                                "multiple choice: cannot draw 3 distinct endings from documents other than "
                                "document " +
                                    std::to_string(truth.story) + " (too few documents or sentences)");
        const detail::EndingCandidate& other = endings[detail::uniform_index(engine, endings.size())];
        bool usable = other.story != truth.story && other.text != truth.text;
        for (std::size_t e = 0; e < d && usable; ++e) usable = other.text != *drawn[e];
        if (usable) {
          drawn[d] = &other.text;
          break;
        }
      }
    }
    item.answer = detail::uniform_index(engine, kChoices);
    std::size_t next = 0;
    for (std::size_t c = 0; c < kChoices; ++c)
      item.endings[c] = c == item.answer ? truth.text : *drawn[next++];
    items.push_back(std::move(item));
  }
  return items;
}

/**
 * @param items all items
 * @param count how many to keep
 * @return `count` items spread evenly over `items` (indices floor(i * size / count)), in order;
 *         all of them when count >= size.
 */
inline std::vector<McItem> select_evenly(std::vector<McItem> items, std::size_t count) {
  if (count >= items.size()) return items;
  std::vector<McItem> kept;
  kept.reserve(count);
  for (std::size_t i = 0; i < count; ++i) kept.push_back(std::move(items[i * items.size() / count]));
  return kept;
}

namespace detail {

inline void append_escaped(std::string& out, std::string_view text) {
  for (const char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
}

[[noreturn]] inline void item_file_error(std::string_view source, std::size_t line, const std::string& what) {
  std::string message(source);
  message += ':';
  message += std::to_string(line);
  message += ": ";
  message += what;
  throw Error(Errc::corrupt_data, message);
}

inline std::string unescape_field(std::string_view field, std::string_view source, std::size_t line) {
  std::string out;
  out.reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] != '\\') {
      out += field[i];
      continue;
    }
    if (i + 1 == field.size()) item_file_error(source, line, "a field ends with a lone backslash");
    switch (field[++i]) {
      case '\\':
        out += '\\';
        break;
      case 't':
        out += '\t';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      default:
        item_file_error(source, line, std::string("unknown escape \\") + field[i]);
    }
  }
  return out;
}

inline std::size_t parse_index(std::string_view field, std::string_view source, std::size_t line,
                               std::string_view name) {
  std::size_t value = 0;
  bool ok = !field.empty() && field.size() <= 18;
  for (const char c : field) {
    ok = ok && c >= '0' && c <= '9';
    if (ok) value = value * 10 + static_cast<std::size_t>(c - '0');
  }
  if (!ok) {
    std::string what(name);
    what += " is not a non-negative integer: '";
    what += field;
    what += '\'';
    item_file_error(source, line, what);
  }
  return value;
}

}  // namespace detail

/**
 * Formats items as an item file: the line kMcItemsHeader, then one line per item of seven
 * tab-separated fields — document index, answer slot (0-3), context, ending 0, ending 1,
 * ending 2, ending 3 — each line ended by '\n'. In text fields a backslash, tab, newline and
 * carriage return are written as `\\`, `\t`, `\n` and `\r`.
 * @param items the items
 * @return the file's bytes
 */
inline std::string format_mc_items(std::span<const McItem> items) {
  std::string out(kMcItemsHeader);
  out += '\n';
  for (const McItem& item : items) {
    out += std::to_string(item.story);
    out += '\t';
    out += std::to_string(item.answer);
    out += '\t';
    detail::append_escaped(out, item.context);
    for (const std::string& ending : item.endings) {
      out += '\t';
      detail::append_escaped(out, ending);
    }
    out += '\n';
  }
  return out;
}

/**
 * Parses an item file (format_mc_items). A '\r' before a line end is ignored.
 * @param text   the file's bytes
 * @param source the file's name, for messages
 * @return its items, in file order
 * @throw Error(corrupt_data) naming the source and line for a missing or different header, a line
 *        without seven fields, a bad number, an answer outside 0-3, an unknown escape, an empty
 *        context or ending, and a file without items.
 */
inline std::vector<McItem> parse_mc_items(std::string_view text, std::string_view source) {
  std::vector<McItem> items;
  std::size_t line_number = 0;
  bool header = true;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (header) {
      if (line != kMcItemsHeader) {
        std::string what = "not a multiple-choice item file (the first line must be '";
        what += kMcItemsHeader;
        what += "')";
        detail::item_file_error(source, line_number, what);
      }
      header = false;
      continue;
    }
    std::vector<std::string_view> fields;
    for (std::size_t start = 0;;) {
      const std::size_t tab = line.find('\t', start);
      fields.push_back(
          line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
      if (tab == std::string_view::npos) break;
      start = tab + 1;
    }
    if (fields.size() != 3 + kChoices) {
      detail::item_file_error(
          source, line_number,
          "expected 7 tab-separated fields (document, answer, context, 4 endings), found " +
              std::to_string(fields.size()));
    }
    McItem item;
    item.story = detail::parse_index(fields[0], source, line_number, "document index");
    item.answer = detail::parse_index(fields[1], source, line_number, "answer");
    if (item.answer >= kChoices) {
      detail::item_file_error(source, line_number,
                              "answer " + std::to_string(item.answer) + " is not in 0-3");
    }
    item.context = detail::unescape_field(fields[2], source, line_number);
    for (std::size_t c = 0; c < kChoices; ++c) {
      item.endings[c] = detail::unescape_field(fields[3 + c], source, line_number);
    }
    if (item.context.empty()) detail::item_file_error(source, line_number, "empty context");
    for (const std::string& ending : item.endings) {
      if (ending.empty()) detail::item_file_error(source, line_number, "empty ending");
    }
    items.push_back(std::move(item));
  }
  if (header) detail::item_file_error(source, 1, "empty file");
  if (items.empty()) detail::item_file_error(source, line_number, "no items");
  return items;
}

/**
 * Reads an item file.
 * @throw Error(io_error) when it cannot be read, Error(corrupt_data) as parse_mc_items.
 */
inline std::vector<McItem> read_mc_items(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  kvbits::detail::require(static_cast<bool>(in), Errc::io_error, "cannot open item file " + path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_mc_items(text, path);
}

}  // namespace kvbits::eval
