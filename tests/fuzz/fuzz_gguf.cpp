// SPDX-License-Identifier: MIT
// libFuzzer target for the GGUF reader: any input must either parse or throw
// kvbits::Error; a parsed file must then answer every accessor without crashing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>

#include "gguf/gguf.hpp"

namespace {

using kvbits::gguf::File;
using kvbits::gguf::ValueType;

// Accessors that may legitimately refuse a value (negative get_uint, a uint64
// array element above INT64_MAX) throw kvbits::Error; anything else escapes and
// is reported by libFuzzer as a crash.
template <class Call>
void tolerate_error(Call&& call) {
  try {
    call();
  } catch (const kvbits::Error&) {
  }
}

void read_every_key(const File& file) {
  for (const auto& key : file.keys()) {
    if (!file.has(key)) std::abort();  // keys() and has() must agree
    switch (file.type_of(key)) {
      case ValueType::string:
        (void)file.get_string(key);
        break;
      case ValueType::boolean:
        (void)file.get_bool(key);
        break;
      case ValueType::float32:
      case ValueType::float64:
        (void)file.get_float(key);
        break;
      case ValueType::array: {
        const auto info = file.array_info(key);
        if (info.element_type == ValueType::string) {
          if (file.get_string_array(key).size() != info.count) std::abort();
        } else if (info.element_type == ValueType::float32 || info.element_type == ValueType::float64) {
          if (file.get_float_array(key).size() != info.count) std::abort();
        } else if (info.element_type != ValueType::array && info.element_type != ValueType::boolean) {
          tolerate_error([&] { (void)file.get_int_array(key); });
        }
        break;
      }
      default:
        (void)file.get_float(key);
        tolerate_error([&] { (void)file.get_uint(key); });
        break;
    }
  }
}

void read_every_tensor(const File& file) {
  for (const auto& tensor : file.tensors()) {
    if (file.find_tensor(tensor.name) != &tensor) std::abort();
    // Parsing validated the layout, so these must not throw.
    if (file.tensor_bytes(tensor).size() != tensor.n_bytes) std::abort();
    if (file.tensor_f32(tensor.name).size() != tensor.n_elements) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  std::optional<File> file;
  try {
    file.emplace(File::parse(bytes, "fuzz input"));
  } catch (const kvbits::Error& e) {
    if (std::string(e.what()).empty()) std::abort();  // every error must explain itself
    return 0;
  }
  // Outside the try: an exception from here on is a bug and terminates the run.
  read_every_key(*file);
  read_every_tensor(*file);
  return 0;
}
