// SPDX-License-Identifier: MIT
#pragma once

#include <string>

#include "kvbits/core/decision.hpp"
#include "kvbits/policy/policy.hpp"
#include "kvbits/policy/policy_text.hpp"

namespace kvbits {

/**
 * Stores every token at the same key and value precision, whatever it is.
 * The baseline every adaptive policy is measured against.
 */
struct StaticPolicy {
  BitDecision bits{};  ///< the precision of every token (default 16/16)

  /**
   * @param token ignored: a static policy looks at nothing.
   * @return `bits`.
   */
  [[nodiscard]] BitDecision decide(const TokenInfo& token) const noexcept {
    static_cast<void>(token);
    return bits;
  }

  /// @return "static:K/V", the configuration a cache file records.
  [[nodiscard]] std::string describe() const { return "static:" + to_string(bits); }
};

static_assert(Policy<StaticPolicy>, "StaticPolicy must satisfy the Policy concept");

}  // namespace kvbits
