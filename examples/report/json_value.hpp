// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kvbits/core/error.hpp"

namespace kvbits::report {

/// A parsed JSON value (RFC 8259), enough to read the tools' own output back.
struct JsonValue {
  enum class Type { null, boolean, number, string, array, object };
  Type type = Type::null;
  bool boolean = false;
  double number = 0.0;
  std::string string;
  std::vector<JsonValue> array;
  std::vector<std::pair<std::string, JsonValue>> object;  // members in document order

  /// @return the member `key` of an object, or nullptr (also when this is not an object).
  [[nodiscard]] const JsonValue* find(std::string_view key) const {
    for (const auto& [name, value] : object) {
      if (name == key) return &value;
    }
    return nullptr;
  }

  /// @return the number, or NaN for null (how the tools write a non-finite number).
  [[nodiscard]] double number_or_nan() const noexcept {
    return type == Type::number ? number : std::numeric_limits<double>::quiet_NaN();
  }
};

namespace detail {

/// A recursive-descent JSON reader over one document.
class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : text_(text) {}

  JsonValue document() {
    JsonValue value = parse_value(0);
    skip_space();
    if (at_ != text_.size()) fail("text after the JSON value");
    return value;
  }

 private:
  static constexpr int kMaxDepth = 256;

  [[noreturn]] void fail(std::string_view what) const {
    std::string message = "JSON: ";
    message += what;
    message += " at offset ";
    message += std::to_string(at_);
    throw Error(Errc::corrupt_data, message);
  }

  void skip_space() {
    while (at_ < text_.size() &&
           (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r'))
      ++at_;
  }

  bool take(std::string_view literal) {
    if (text_.substr(at_, literal.size()) != literal) return false;
    at_ += literal.size();
    return true;
  }

  JsonValue parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting too deep");
    skip_space();
    if (at_ >= text_.size()) fail("unexpected end");
    JsonValue value;
    const char c = text_[at_];
    if (c == '{') {
      value.type = JsonValue::Type::object;
      ++at_;
      skip_space();
      if (take("}")) return value;
      do {
        skip_space();
        if (at_ >= text_.size() || text_[at_] != '"') fail("expected a member name");
        std::string name = parse_string();
        skip_space();
        if (!take(":")) fail("expected ':'");
        value.object.emplace_back(std::move(name), parse_value(depth + 1));
        skip_space();
      } while (take(","));
      if (!take("}")) fail("expected ',' or '}'");
    } else if (c == '[') {
      value.type = JsonValue::Type::array;
      ++at_;
      skip_space();
      if (take("]")) return value;
      do {
        value.array.push_back(parse_value(depth + 1));
        skip_space();
      } while (take(","));
      if (!take("]")) fail("expected ',' or ']'");
    } else if (c == '"') {
      value.type = JsonValue::Type::string;
      value.string = parse_string();
    } else if (take("true") || take("false")) {
      value.type = JsonValue::Type::boolean;
      value.boolean = c == 't';
    } else if (take("null")) {
      value.type = JsonValue::Type::null;
    } else {
      value.type = JsonValue::Type::number;
      value.number = parse_number();
    }
    return value;
  }

  double parse_number() {
    const std::size_t start = at_;
    const auto digits = [&] {
      const std::size_t from = at_;
      while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
      return at_ > from;
    };
    take("-");
    if (!take("0") && !digits()) fail("expected a value");
    if (take(".") && !digits()) fail("expected digits after '.'");
    if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      ++at_;
      if (!take("+")) take("-");
      if (!digits()) fail("expected an exponent");
    }
    // strtod on a NUL-terminated copy: the JSON grammar above is a subset of its C-locale syntax.
    const std::string number(text_.substr(start, at_ - start));
    return std::strtod(number.c_str(), nullptr);
  }

  unsigned hex4() {
    if (at_ + 4 > text_.size()) fail("short \\u escape");
    unsigned code = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[at_++];
      code <<= 4;
      if (h >= '0' && h <= '9')
        code |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f')
        code |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        code |= static_cast<unsigned>(h - 'A' + 10);
      else
        fail("bad \\u escape");
    }
    return code;
  }

  static void append_utf8(std::string& out, unsigned code) {
    const auto byte = [&](unsigned b) { out += static_cast<char>(static_cast<unsigned char>(b)); };
    if (code < 0x80) {
      byte(code);
    } else if (code < 0x800) {
      byte(0xC0 | (code >> 6));
      byte(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      byte(0xE0 | (code >> 12));
      byte(0x80 | ((code >> 6) & 0x3F));
      byte(0x80 | (code & 0x3F));
    } else {
      byte(0xF0 | (code >> 18));
      byte(0x80 | ((code >> 12) & 0x3F));
      byte(0x80 | ((code >> 6) & 0x3F));
      byte(0x80 | (code & 0x3F));
    }
  }

  std::string parse_string() {
    ++at_;  // the opening quote
    std::string out;
    while (true) {
      if (at_ >= text_.size()) fail("unterminated string");
      const char c = text_[at_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= text_.size()) fail("unterminated string");
      const char e = text_[at_++];
      if (e == 'u') {
        unsigned code = hex4();
        if (code >= 0xD800 && code < 0xDC00 && take("\\u")) {
          const unsigned low = hex4();
          if (low < 0xDC00 || low > 0xDFFF) fail("unpaired surrogate");
          code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        } else if (code >= 0xD800 && code < 0xE000) {
          fail("unpaired surrogate");
        }
        append_utf8(out, code);
        continue;
      }
      // The one-character escapes, and the characters they stand for, position by position.
      constexpr std::string_view kEscapes = "\"\\/bfnrt";
      constexpr std::string_view kMeanings = "\"\\/\b\f\n\r\t";
      const std::size_t which = kEscapes.find(e);
      if (which == std::string_view::npos) fail("bad escape");
      out += kMeanings[which];
    }
  }

  std::string_view text_;
  std::size_t at_ = 0;
};

}  // namespace detail

/**
 * Parses one JSON document.
 * @throw Error(corrupt_data) naming the offset of the first error.
 */
inline JsonValue parse_json(std::string_view text) { return detail::JsonReader(text).document(); }

}  // namespace kvbits::report
