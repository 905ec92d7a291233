// SPDX-License-Identifier: MIT
// The controller must read exactly as many inputs as the policy's features write.
// expect: LearnedPolicy: Features::size + Supplied::size must equal the Mlp's input count
#include "user_types.hpp"

using Features = kvbits::FeatureSet<kvbits::AgeFeature, user::FirstTokenFeature>;
using Net = kvbits::Mlp<3, kvbits::Hidden<8>, kvbits::WidthList<2, 4, 8>>;
kvbits::LearnedPolicy<Features, Net> policy{Net{}};
