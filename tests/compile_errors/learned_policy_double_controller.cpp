// SPDX-License-Identifier: MIT
// A LearnedPolicy runs a float controller; double is for the trainer's gradient checks.
// expect: LearnedPolicy runs a float controller
#include "user_types.hpp"

using Net = kvbits::Mlp<1, kvbits::Hidden<8>, kvbits::WidthList<2, 4, 8>, double>;
kvbits::LearnedPolicy<user::FirstTokenFeature, Net> policy{Net{}};
