// SPDX-License-Identifier: MIT
// A WidthList names its widths cheapest first.
// expect: WidthList widths must be strictly increasing (cheapest first)
#include "user_types.hpp"

kvbits::Mlp<4, kvbits::Hidden<8>, kvbits::WidthList<8, 4, 2>> net;
