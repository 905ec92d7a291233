// SPDX-License-Identifier: MIT
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "kvbits/core/error.hpp"

namespace kvbits::report {

namespace detail {

/// The Unicode replacement character, U+FFFD, in UTF-8.
inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

/**
 * @return the length of the well-formed UTF-8 sequence at the start of `text` (1-4), or 0 when
 *         it is not one (a stray continuation byte, an overlong form, a surrogate, beyond U+10FFFF
 *         or cut short).
 */
inline std::size_t utf8_sequence_length(std::string_view text) noexcept {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[i]); };
  const std::uint8_t lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  std::uint8_t low = 0x80;  // the range the second byte must lie in (rules out overlongs etc.)
  std::uint8_t high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

/// @return true for a character XML 1.0 does not allow in a document (C0 controls but tab/LF/CR,
///         U+FFFE, U+FFFF), given its UTF-8 sequence.
inline bool forbidden_in_xml(std::string_view sequence) noexcept {
  if (sequence.size() == 1) {
    const char c = sequence[0];
    return static_cast<std::uint8_t>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r';
  }
  return sequence == "\xEF\xBF\xBE" || sequence == "\xEF\xBF\xBF";
}

}  // namespace detail

/**
 * Appends `text` to `out` as XML/HTML character data or attribute value: `& < > " '` become
 * entities, byte sequences that are not well-formed UTF-8 and characters XML forbids become
 * U+FFFD, so any input gives a well-formed document.
 */
inline void append_escaped(std::string& out, std::string_view text) {
  while (!text.empty()) {
    const std::size_t length = detail::utf8_sequence_length(text);
    if (length == 0) {
      out += detail::kReplacement;
      text.remove_prefix(1);
      continue;
    }
    const std::string_view sequence = text.substr(0, length);
    text.remove_prefix(length);
    if (detail::forbidden_in_xml(sequence)) {
      out += detail::kReplacement;
      continue;
    }
    switch (sequence[0]) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += sequence;
        break;
    }
  }
}

/// @return `text` escaped as append_escaped does.
inline std::string escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  append_escaped(out, text);
  return out;
}

/**
 * @return `value` with `decimals` digits after the point, independent of the locale; "-0.0" is
 *         written "0.0". Non-finite values are written "nan", "inf" or "-inf".
 */
inline std::string fixed(double value, int decimals) {
  char buffer[64];
  const auto [end, error] =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, decimals);
  if (error != std::errc{}) return std::isnan(value) ? "nan" : (value < 0 ? "-inf" : "inf");
  std::string text(buffer, end);
  if (text.front() == '-' && text.find_first_not_of("-0.") == std::string::npos) text.erase(0, 1);
  return text;
}

/// @return the shortest text that reads back as `value` ("0.001", "1e-05"), locale-independent.
inline std::string shortest(double value) {
  char buffer[64];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
  if (error != std::errc{}) return "nan";
  return std::string(buffer, end);
}

/// @return `value` with `digits` significant digits ("0.0123", "1.23e-05").
inline std::string significant(double value, int digits) {
  char buffer[64];
  const auto [end, error] =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::general, digits);
  if (error != std::errc{}) return "nan";
  return std::string(buffer, end);
}

/// One attribute of an element; the value is escaped when written.
struct Attribute {
  std::string_view name;
  std::string value;
};

/**
 * Writes XML (SVG) or HTML markup that is well-formed by construction: every element opened is
 * closed in order, text and attribute values are escaped, and the writer refuses to finish with
 * an element still open.
 */
class MarkupWriter {
 public:
  /// Writes `<tag attributes...>` and keeps it open until close().
  MarkupWriter& open(std::string_view tag, std::initializer_list<Attribute> attributes = {}) {
    start_tag(tag, attributes);
    out_ += '>';
    open_.emplace_back(tag);
    return *this;
  }

  /// Writes an element with no content: `<tag attributes.../>`.
  MarkupWriter& leaf(std::string_view tag, std::initializer_list<Attribute> attributes = {}) {
    start_tag(tag, attributes);
    out_ += "/>";
    return *this;
  }

  /// Writes `<tag attributes...>text</tag>`.
  MarkupWriter& element(std::string_view tag, std::initializer_list<Attribute> attributes,
                        std::string_view content) {
    open(tag, attributes);
    text(content);
    return close();
  }

  /// Writes escaped character data.
  MarkupWriter& text(std::string_view content) {
    append_escaped(out_, content);
    return *this;
  }

  /// Writes `content` as it is (a script, a style sheet or an XML declaration the caller vouches for).
  MarkupWriter& raw(std::string_view content) {
    out_ += content;
    return *this;
  }

  /// Closes the innermost open element. @throw Error(invalid_argument) when none is open.
  MarkupWriter& close() {
    kvbits::detail::require(!open_.empty(), Errc::invalid_argument, "markup: close() with no open element");
    out_ += "</";
    out_ += open_.back();
    out_ += '>';
    open_.pop_back();
    return *this;
  }

  /// @return the markup. @throw Error(invalid_argument) when an element is still open.
  [[nodiscard]] std::string finish() && {
    kvbits::detail::require(
        open_.empty(), Errc::invalid_argument,
        "markup: element <" + (open_.empty() ? std::string() : open_.back()) + "> is still open");
    return std::move(out_);
  }

 private:
  void start_tag(std::string_view tag, std::initializer_list<Attribute> attributes) {
    out_ += '<';
    out_ += tag;
    for (const Attribute& attribute : attributes) {
      out_ += ' ';
      out_ += attribute.name;
      out_ += "=\"";
      append_escaped(out_, attribute.value);
      out_ += '"';
    }
  }

  std::string out_;
  std::vector<std::string> open_;  // the open elements' tags, outermost first
};

}  // namespace kvbits::report
