// SPDX-License-Identifier: MIT
// libFuzzer target for the SentencePiece tokenizer: any byte string must encode to valid ids,
// and decode(encode(s)) must give s back unless s contains U+2581 (which SentencePiece cannot
// tell from a space).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "model/tokenizer.hpp"
#include "model/toy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const kvbits::model::Tokenizer tokenizer = kvbits::model::make_toy_tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto ids = tokenizer.encode(text);
  for (const std::int32_t id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= tokenizer.size() || id == tokenizer.unknown()) {
      std::abort();
    }
  }
  if (text.find("\xE2\x96\x81") == std::string_view::npos && tokenizer.decode(ids) != text) {
    std::abort();
  }
  return 0;
}
