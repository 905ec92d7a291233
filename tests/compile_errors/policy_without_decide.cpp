// SPDX-License-Identifier: MIT
// A policy whose member is not called decide() is not a Policy.
// expect-GNU: requires (Policy<P>) && (Backend<B>) class kvbits::QuantizedKVCache
// expect-GNU: no operand of the disjunction is satisfied
// expect-Clang: 'ChoosesBits' does not satisfy 'Policy'
// expect-Clang: no member named 'decide' in 'ChoosesBits'
#include "user_types.hpp"

struct ChoosesBits {
  [[nodiscard]] kvbits::BitDecision choose(const kvbits::TokenInfo&) const { return {8, 4}; }
};

kvbits::QuantizedKVCache<ChoosesBits> cache(user::small_options());
