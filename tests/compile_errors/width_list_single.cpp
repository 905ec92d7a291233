// SPDX-License-Identifier: MIT
// A controller with one width has nothing to choose.
// expect: a WidthList needs at least two widths to choose from
#include "user_types.hpp"

kvbits::Mlp<4, kvbits::Hidden<8>, kvbits::WidthList<4>> net;
