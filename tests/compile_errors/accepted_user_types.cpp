// SPDX-License-Identifier: MIT
// The control: the user types of user_types.hpp in every place the other files misuse them.
// Must compile, so a harness that fails every file cannot pass the error tests.
#include <vector>

#include "user_types.hpp"

using Features = kvbits::FeatureSet<kvbits::AgeFeature, user::FirstTokenFeature>;
using Net = kvbits::Mlp<Features::size, kvbits::Hidden<8>, kvbits::WidthList<2, 4, 8, 16>>;

float attend_once(const kvbits::CacheOptions& options) {
  std::vector<float> k(options.kv_heads * options.head_dim, 0.5f), v(k.size(), 0.25f), out(k.size());
  kvbits::QuantizedKVCache<user::SinksWide, user::RenamedScalarBackend> cache(options);
  cache.append(0, k, v, {0, 0, 1});
  cache.attend(0, k, out);

  kvbits::QuantizedKVCache<kvbits::LearnedPolicy<Features, Net>> learned(
      options, kvbits::LearnedPolicy<Features, Net>(Net{}));
  learned.append(0, k, v, {0, 0, 1});
  learned.attend(0, k, out);
  return out[0];
}
