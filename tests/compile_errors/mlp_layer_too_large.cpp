// SPDX-License-Identifier: MIT
// Every Mlp layer is a fixed-size Eigen matrix, so it must fit Eigen's stack limit.
// expect: an Mlp layer this large does not fit a fixed-size Eigen matrix (EIGEN_STACK_ALLOCATION_LIMIT)
#include "user_types.hpp"

kvbits::Mlp<4, kvbits::Hidden<1024, 1024>, kvbits::WidthList<2, 4, 8>> net;
