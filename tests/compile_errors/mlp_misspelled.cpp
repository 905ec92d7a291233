// SPDX-License-Identifier: MIT
// Mlp takes its hidden sizes and widths as the types Hidden<...> and WidthList<...>.
// expect: spell an Mlp as Mlp<Inputs, Hidden<sizes...>, WidthList<bits...>>
#include "user_types.hpp"

kvbits::Mlp<4, kvbits::Hidden<8>, int> net;
