// SPDX-License-Identifier: MIT
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "kvbits/config.hpp"

namespace kvbits {

/// What went wrong, so callers can react without parsing messages.
enum class Errc {
  invalid_argument,    ///< a parameter outside its documented range
  shape_mismatch,      ///< a span whose length does not match the configured shape
  non_finite_input,    ///< NaN or Inf where finite values are required
  capacity_exhausted,  ///< no room left for another token
  corrupt_data,        ///< a file or buffer that does not follow its format
  io_error,            ///< the operating system refused a read, write or map
  unsupported,         ///< a valid request this build does not handle
};

/// Human-readable name of an error code.
constexpr std::string_view to_string(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument:
      return "invalid argument";
    case Errc::shape_mismatch:
      return "shape mismatch";
    case Errc::non_finite_input:
      return "non-finite input";
    case Errc::capacity_exhausted:
      return "capacity exhausted";
    case Errc::corrupt_data:
      return "corrupt data";
    case Errc::io_error:
      return "I/O error";
    case Errc::unsupported:
      return "unsupported";
  }
  return "unknown error";
}

/**
 * The one exception type kvbits throws (besides std::bad_alloc, and what a
 * user's policy throws). Every throwing operation documents its guarantee,
 * and docs/errors.md lists them all: almost every one is strong (when it
 * throws, the object it was called on is unchanged); QuantizedKVCache::prefill
 * is basic for the failures that can only happen midway.
 */
class Error : public std::runtime_error {
 public:
  /**
   * @param code the failure's category.
   * @param message what failed; what() reads `kvbits: CODE: message`.
   */
  Error(Errc code, const std::string& message)
      : std::runtime_error("kvbits: " + std::string(to_string(code)) + ": " + message), code_(code) {}

  /// @return the machine-readable category of the failure.
  [[nodiscard]] Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

namespace detail {

/// Throws Error(code, message) unless `condition` holds; for public entry points.
inline void require(bool condition, Errc code, std::string_view message) {
  if (!condition) throw Error(code, std::string(message));
}

}  // namespace detail
}  // namespace kvbits

// Hot-path precondition: checked in debug builds, free in release builds.
#if KVBITS_DEBUG_CHECKS
#define KVBITS_DEBUG_REQUIRE(condition, code, message) \
  ::kvbits::detail::require(static_cast<bool>(condition), code, message)
#else
#define KVBITS_DEBUG_REQUIRE(condition, code, message) static_cast<void>(0)
#endif
