// SPDX-License-Identifier: MIT
// Weight files hold float parameters: saving a double controller is rejected.
// expect: weight files hold float parameters: save and load an Mlp<..., float>
#include "user_types.hpp"

using Net = kvbits::Mlp<1, kvbits::Hidden<8>, kvbits::WidthList<2, 4, 8>, double>;

void save(const Net& net) {
  kvbits::save_weights("controller.kvbc", net, user::FirstTokenFeature::names(), kvbits::TrainingMetadata{});
}
