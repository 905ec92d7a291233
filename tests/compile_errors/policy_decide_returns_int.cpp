// SPDX-License-Identifier: MIT
// decide() must answer with something convertible to a BitDecision, not a single width.
// expect-GNU: requires (Policy<P>) && (Backend<B>) class kvbits::QuantizedKVCache
// expect-GNU: no operand of the disjunction is satisfied
// expect-Clang: 'OneWidth' does not satisfy 'Policy'
// expect-Clang: 'std::convertible_to<int, kvbits::BitDecision>' was not satisfied
#include "user_types.hpp"

struct OneWidth {
  [[nodiscard]] int decide(const kvbits::TokenInfo&) const { return 4; }
};

kvbits::QuantizedKVCache<OneWidth> cache(user::small_options());
