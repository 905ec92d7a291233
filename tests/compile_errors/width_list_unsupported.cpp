// SPDX-License-Identifier: MIT
// A controller chooses among the supported widths only.
// expect: every WidthList width must be one of kSupportedBits
#include "user_types.hpp"

kvbits::Mlp<4, kvbits::Hidden<8>, kvbits::WidthList<2, 7, 8>> net;
