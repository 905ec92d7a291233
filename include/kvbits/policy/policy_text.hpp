// SPDX-License-Identifier: MIT
#pragma once

#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "kvbits/core/bit_width.hpp"
#include "kvbits/core/decision.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits {
namespace detail {

/// @return `text` parsed whole as a T (integer or floating point), or nothing when any character is left.
template <class T>
std::optional<T> parse_number(std::string_view text) noexcept {
  static_assert(std::is_arithmetic_v<T>, "parse_number reads integers and floating-point numbers");
  if (text.empty() || text.front() == '+') return std::nullopt;
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

/// @return the shortest text that parse_number<T> reads back as exactly `value`.
template <class T>
std::string format_number(T value) {
  static_assert(std::is_arithmetic_v<T>, "format_number writes integers and floating-point numbers");
  char buffer[64];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
  static_cast<void>(error);  // 64 characters hold any arithmetic value
  return std::string(buffer, end);
}

/// @return `text` cut at every `separator`; an empty text gives one empty item.
inline std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> items;
  std::size_t start = 0;
  for (std::size_t comma = text.find(separator); comma != std::string_view::npos;
       comma = text.find(separator, start)) {
    items.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  items.push_back(text.substr(start));
  return items;
}

/// @return `text` without leading and trailing spaces and tabs.
constexpr std::string_view trim(std::string_view text) noexcept {
  const std::size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

}  // namespace detail

/// @return "K/V", the text parse_bit_decision reads.
inline std::string to_string(const BitDecision& bits) {
  return std::to_string(bits.key_bits) + "/" + std::to_string(bits.value_bits);
}

/**
 * @param bits widths to check.
 * @param where names them in the error message, e.g. "budget ladder rung 3".
 * @throws Error(invalid_argument) naming `where` unless both widths are supported.
 */
inline void require_supported_bits(const BitDecision& bits, std::string_view where) {
  if (!is_supported_bits(bits.key_bits) || !is_supported_bits(bits.value_bits)) {
    throw Error(Errc::invalid_argument, std::string(where) + ": widths " + to_string(bits) +
                                            " must each be " + supported_bits_text());
  }
}

/**
 * @param text "K/V", e.g. "8/4", each width one of kSupportedBits.
 * @param where names the text in error messages, e.g. "tier '16=6/4'".
 * @return the widths.
 * @throws Error(invalid_argument) naming `where` when the text is not K/V with supported widths.
 */
inline BitDecision parse_bit_decision(std::string_view text, std::string_view where) {
  const std::size_t slash = text.find('/');
  const auto key =
      slash == std::string_view::npos ? std::nullopt : detail::parse_number<int>(text.substr(0, slash));
  const auto value =
      slash == std::string_view::npos ? std::nullopt : detail::parse_number<int>(text.substr(slash + 1));
  if (!key || !value) {
    throw Error(Errc::invalid_argument, std::string(where) + ": widths '" + std::string(text) +
                                            "' are not KEY/VALUE bits such as 8/4");
  }
  require_supported_bits(BitDecision{*key, *value}, where);
  return BitDecision{*key, *value};
}

}  // namespace kvbits
