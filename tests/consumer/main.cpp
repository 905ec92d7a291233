// SPDX-License-Identifier: MIT
// Round-trips one vector through the package's headers; exits non-zero on failure.
#include <kvbits/kvbits.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  const kvbits::QuantFormat format{8, 32, kvbits::Scheme::asymmetric};
  std::vector<float> x(64);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i));
  std::vector<std::uint8_t> packed(kvbits::packed_size(format, x.size()));
  std::vector<float> y(x.size());
  kvbits::DefaultBackend::encode(format, x, packed);
  kvbits::DefaultBackend::decode(format, packed, y);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::fabs(x[i] - y[i]) > 0.01f) {
      std::printf("element %zu: expected %f, got %f\n", i, static_cast<double>(x[i]),
                  static_cast<double>(y[i]));
      return 1;
    }
  }
  std::printf("kvbits %s (%s): %s backend round trip ok\n", kvbits::kVersionString, KVBITS_CONSUMER_STYLE,
              std::string(kvbits::DefaultBackend::name()).c_str());
  return 0;
}
