// SPDX-License-Identifier: MIT
// A hidden layer of size 0 is an error, not a way to remove the layer (that is Hidden<>).
// expect: every Mlp layer size must be >= 1
#include "user_types.hpp"

kvbits::Mlp<4, kvbits::Hidden<16, 0>, kvbits::WidthList<2, 4, 8>> net;
