// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kvbits::eval {

namespace detail {

inline bool is_space(char c) noexcept { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

inline bool is_terminal(char c) noexcept { return c == '.' || c == '!' || c == '?'; }

// Closing marks that may follow the terminal punctuation inside the sentence: straight quotes,
// a bracket, and the UTF-8 right double and single quotation marks (U+201D, U+2019).
inline std::size_t closing_mark_length(std::string_view rest) noexcept {
  if (rest.empty()) return 0;
  if (rest[0] == '"' || rest[0] == '\'' || rest[0] == ')') return 1;
  if (rest.starts_with("\u201d") || rest.starts_with("\u2019")) return 3;
  return 0;
}

// Titles whose period does not end a sentence ("Mr. Brown").
inline bool ends_with_title(std::string_view sentence) noexcept {
  constexpr std::array<std::string_view, 5> kTitles{"Mr.", "Mrs.", "Ms.", "Dr.", "St."};
  for (const std::string_view title : kTitles) {
    if (sentence.size() >= title.size() && sentence.ends_with(title) &&
        (sentence.size() == title.size() || is_space(sentence[sentence.size() - title.size() - 1]))) {
      return true;
    }
  }
  return false;
}

// Appends `piece` to `out` with every run of whitespace turned into one space, none at either end.
inline void append_collapsed(std::string& out, std::string_view piece) {
  for (const char c : piece) {
    if (is_space(c)) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
}

}  // namespace detail

/**
 * Splits a text into sentences. A sentence ends after a run of '.', '!' or '?' and the closing
 * quotes or bracket right after it (`"`, `'`, `)`, U+201D, U+2019) when whitespace or the end of
 * the text follows; a period after the titles Mr, Mrs, Ms, Dr or St does not end one. Text after
 * the last such end is a final sentence. Each sentence has its whitespace runs (newlines
 * included) collapsed to single spaces and none at either end; empty sentences are dropped.
 * Quotation marks are not paired: a quoted passage of several sentences is split like any other.
 * @param text UTF-8 text (a story)
 * @return its sentences in order
 */
inline std::vector<std::string> split_sentences(std::string_view text) {
  std::vector<std::string> sentences;
  std::string current;
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (!detail::is_terminal(c)) {
      detail::append_collapsed(current, text.substr(i, 1));
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && detail::is_terminal(text[end])) ++end;
    while (const std::size_t mark = detail::closing_mark_length(text.substr(end))) end += mark;
    current.append(text.substr(i, end - i));
    i = end;
    const bool boundary = i == text.size() || detail::is_space(text[i]);
    if (boundary && !detail::ends_with_title(current)) {
      if (!current.empty() && current.back() == ' ') current.pop_back();
      sentences.push_back(std::move(current));
      current.clear();
    }
  }
  while (!current.empty() && current.back() == ' ') current.pop_back();
  if (!current.empty()) sentences.push_back(std::move(current));
  return sentences;
}

/// @return the number of whitespace-separated words in `text`.
inline std::size_t count_words(std::string_view text) noexcept {
  std::size_t words = 0;
  bool in_word = false;
  for (const char c : text) {
    const bool space = detail::is_space(c);
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

}  // namespace kvbits::eval
