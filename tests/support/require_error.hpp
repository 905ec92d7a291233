// SPDX-License-Identifier: MIT
#pragma once

#include <string>

#include <catch2/catch.hpp>

#include "kvbits/core/error.hpp"

namespace kvbits::test {

/**
 * Checks that `fn()` throws a kvbits::Error with `code` whose message contains `message`.
 * @param fn the call expected to throw.
 * @param code the expected error code.
 * @param message a part of the expected message.
 */
template <class Fn>
void require_error(Fn&& fn, Errc code, const std::string& message) {
  try {
    fn();
    FAIL("expected Error(" << to_string(code) << ") containing: " << message);
  } catch (const Error& error) {
    CHECK(error.code() == code);
    CHECK_THAT(error.what(), Catch::Contains(message));
  }
}

}  // namespace kvbits::test
