// SPDX-License-Identifier: MIT
// libFuzzer target for the controller weight-file loader: any input must either
// decode or throw kvbits::Error, and a decoded file must encode back to the same
// bytes. Each input is tried twice: as given, and with the header's payload size
// and checksum recomputed, so mutations also reach the checks behind the checksum.
// The controller and feature names are those of tests/test_controller.cpp's
// weight-file tests, which write the seed corpus (KVBITS_WRITE_FUZZ_CORPUS=1).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvbits/controller/checksum.hpp"
#include "kvbits/controller/mlp.hpp"
#include "kvbits/controller/weight_file.hpp"
#include "kvbits/controller/width_list.hpp"
#include "kvbits/core/error.hpp"

namespace {

using Net = kvbits::Mlp<3, kvbits::Hidden<5, 4>, kvbits::WidthList<2, 4, 8, 16>>;
constexpr std::array<std::string_view, 3> kNames = {"log_age", "received_mass", "entropy"};

void decode(const std::vector<std::byte>& bytes) {
  kvbits::ControllerWeights<Net> weights;
  try {
    weights = kvbits::decode_weights<Net>(bytes, kNames, "fuzz input");
  } catch (const kvbits::Error& e) {
    if (std::string(e.what()).empty()) std::abort();  // every error must explain itself
    return;
  }
  // Outside the try: an exception from here on is a bug and terminates the run.
  if (kvbits::encode_weights(weights.net, kNames, weights.training) != bytes) std::abort();
  const kvbits::BitDecision bits = weights.net.predict(Net::Input::Zero());
  if (Net::widths_type::index_of(bits.key_bits) == Net::kWidths) std::abort();
}

void put_u64(std::vector<std::byte>& bytes, std::size_t offset, std::uint64_t v) {
  for (std::size_t i = 0; i < 8; ++i) bytes[offset + i] = static_cast<std::byte>((v >> (8 * i)) & 0xffU);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* begin = reinterpret_cast<const std::byte*>(data);
  std::vector<std::byte> bytes(begin, begin + size);
  decode(bytes);
  if (bytes.size() >= kvbits::kWeightFileHeaderBytes) {
    const auto payload = std::span<const std::byte>(bytes).subspan(kvbits::kWeightFileHeaderBytes);
    put_u64(bytes, kvbits::kWeightFilePayloadSizeOffset, payload.size());
    put_u64(bytes, kvbits::kWeightFileChecksumOffset, kvbits::detail::fnv1a64(payload));
    decode(bytes);
  }
  return 0;
}
