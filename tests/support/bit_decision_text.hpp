// SPDX-License-Identifier: MIT
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "kvbits/core/decision.hpp"
#include "kvbits/policy/policy_text.hpp"

// Catch prints a BitDecision as "K/V" in failed assertions.
namespace Catch {
template <>
struct StringMaker<kvbits::BitDecision> {
  static std::string convert(const kvbits::BitDecision& bits) { return kvbits::to_string(bits); }
};
}  // namespace Catch
