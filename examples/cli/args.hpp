// SPDX-License-Identifier: MIT
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "kvbits/core/error.hpp"

namespace kvbits::cli {

/**
 * @param text a whole number in the form std::stod reads (e.g. "7.5", "-1e-3")
 * @return its value, or nothing for text that is not entirely one finite number
 */
inline std::optional<double> parse_number(const std::string& text) {
  std::size_t used = 0;
  double x = 0.0;
  try {
    x = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (used != text.size() || !std::isfinite(x)) return std::nullopt;
  return x;
}

/**
 * Walks command-line arguments of the form `--name value`, `--name=value` and `--flag`.
 * The tool decides per option whether it takes a value, so flags and options mix freely.
 */
class ArgCursor {
 public:
  ArgCursor(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) args_.emplace_back(argv[i]);
  }

  /// @return true when every argument has been consumed.
  [[nodiscard]] bool done() const noexcept { return next_ >= args_.size(); }

  /**
   * Consumes the next option name.
   * @return the name including the leading dashes ("--model").
   * @throw Error(invalid_argument) for a positional argument.
   */
  std::string next_option() {
    std::string arg = args_[next_++];
    kvbits::detail::require(arg.rfind("--", 0) == 0 && arg.size() > 2, Errc::invalid_argument,
                            "unexpected argument '" + arg + "' (see --help)");
    pending_.reset();
    if (const std::size_t equals = arg.find('='); equals != std::string::npos) {
      pending_ = arg.substr(equals + 1);
      arg.resize(equals);
    }
    current_ = arg;
    return arg;
  }

  /**
   * @return the value of the current option ("--name=value" or the next argument).
   * @throw Error(invalid_argument) when there is none.
   */
  std::string value() {
    if (pending_) {
      std::string v = *pending_;
      pending_.reset();
      return v;
    }
    kvbits::detail::require(!done(), Errc::invalid_argument, current_ + " needs a value");
    return args_[next_++];
  }

  /// @return the option being read, e.g. "--model", for messages.
  [[nodiscard]] const std::string& option() const noexcept { return current_; }

  /// Fails when a flag was given a value (`--help=yes`).
  void no_value() const {
    kvbits::detail::require(!pending_, Errc::invalid_argument, current_ + " takes no value");
  }

  /// @return the value of the current option as a non-negative integer.
  std::uint64_t count() {
    const std::string text = value();
    std::uint64_t n = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), n);
    kvbits::detail::require(error == std::errc{} && end == text.data() + text.size() && !text.empty(),
                            Errc::invalid_argument,
                            current_ + " expects a non-negative integer, got '" + text + "'");
    return n;
  }

  /// @return the value of the current option as a finite number.
  double number() {
    const std::string text = value();
    const std::optional<double> x = parse_number(text);
    kvbits::detail::require(x.has_value(), Errc::invalid_argument,
                            current_ + " expects a number, got '" + text + "'");
    return *x;
  }

 private:
  std::vector<std::string> args_;
  std::size_t next_ = 0;
  std::string current_;
  std::optional<std::string> pending_;
};

/// One option of a tool: its name (with the dashes) and what it does with the cursor.
template <class Options>
struct OptionRule {
  std::string_view name;                ///< e.g. "--model"
  void (*apply)(Options&, ArgCursor&);  ///< reads the value (if any) into the options
};

/**
 * Parses a command line by a table of option rules. `--help` (a flag) sets `options.help`; any
 * other name must be in `rules`.
 * @throw Error(invalid_argument) for an unknown option, a positional argument or a bad value.
 */
template <class Options>
Options parse_with(int argc, char** argv, std::span<const OptionRule<Options>> rules) {
  Options options;
  ArgCursor args(argc, argv);
  while (!args.done()) {
    const std::string name = args.next_option();
    if (name == "--help") {
      args.no_value();
      options.help = true;
      continue;
    }
    bool known = false;
    for (const OptionRule<Options>& rule : rules) {
      if (rule.name != name) continue;
      rule.apply(options, args);
      known = true;
      break;
    }
    kvbits::detail::require(known, Errc::invalid_argument, "unknown option " + name + " (see --help)");
  }
  return options;
}

}  // namespace kvbits::cli
