// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gguf/byte_reader.hpp"
#include "gguf/decode.hpp"
#include "gguf/types.hpp"
#include "kvbits/core/error.hpp"

namespace kvbits::gguf::detail {

/// One metadata key-value pair, located in the file rather than copied out:
/// the parser has validated every byte it points at.
struct Entry {
  std::string key;
  ValueType type;
  std::uint64_t value_offset;     // file offset of the value (just after its u32 type id)
  ArrayInfo array;                // element type and count; meaningful when type == array
  std::uint64_t elements_offset;  // file offset of the first array element
};

/// Smallest possible metadata entry: empty key (u64 length), type id, a one-byte value.
inline constexpr std::uint64_t kMinEntryBytes = 8 + 4 + 1;
/// Smallest possible tensor info: empty name, n_dims, one dim, type id, offset.
inline constexpr std::uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

/// Everything the parser learned about a file; offsets point into its bytes.
struct Layout {
  std::uint32_t version = 0;
  std::size_t alignment = kDefaultAlignment;
  std::uint64_t data_offset = 0;                                 // file offset of the tensor data section
  std::vector<Entry> entries;                                    // [kv_count] metadata, file order
  std::map<std::string, std::size_t, std::less<>> key_index;     // key -> entries index
  std::vector<TensorInfo> tensors;                               // [tensor_count] file order
  std::map<std::string, std::size_t, std::less<>> tensor_index;  // name -> tensors index

  /// @return the entry for `key`, or nullptr.
  [[nodiscard]] const Entry* find(std::string_view key) const {
    const auto it = key_index.find(key);
    return it == key_index.end() ? nullptr : &entries[it->second];
  }
};

/**
 * Validates a whole GGUF image and records its layout. Every count, length,
 * type id, offset and size is checked against the bytes that remain (with
 * overflow-checked arithmetic) before it is used, so no input can make the
 * parser read out of bounds or allocate more than a small multiple of the
 * input size.
 */
class LayoutParser {
 public:
  /**
   * @param bytes the whole file
   * @param source prefix of every error message (the path or buffer name)
   * @return the validated layout
   * @throws Error(corrupt_data) for malformed content, Error(unsupported) for
   *         GGUF v1, big-endian files and unsupported tensor types
   */
  static Layout parse(std::span<const std::byte> bytes, std::string_view source) {
    LayoutParser parser(bytes);
    ByteReader in(bytes, source);
    std::uint64_t tensor_count = 0;
    std::uint64_t kv_count = 0;
    parser.parse_header(in, tensor_count, kv_count);
    parser.parse_metadata(in, kv_count);
    parser.parse_tensor_infos(in, tensor_count);
    parser.check_tensor_data(in);
    return std::move(parser.layout_);
  }

 private:
  explicit LayoutParser(std::span<const std::byte> bytes) : bytes_(bytes) {}

  static ValueType read_value_type(ByteReader& in, std::string_view what) {
    const auto id = in.read<std::uint32_t>(what);
    if (!is_valid_value_type(id)) {
      in.fail("unknown " + std::string(what) + " id " + std::to_string(id) + " (valid ids are 0 to 12)");
    }
    return static_cast<ValueType>(id);
  }

  static ArrayInfo read_array_header(ByteReader& in, int depth) {
    const ValueType element_type = read_value_type(in, "array element type");
    const auto count = in.read<std::uint64_t>("array length");
    if (element_type == ValueType::array && depth >= kMaxArrayDepth) {
      in.fail("arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
    }
    // Every element takes at least this many bytes, which bounds the loops
    // and allocations below by the file size.
    if (count > in.remaining() / min_encoded_size(element_type)) {
      in.fail("array of " + std::to_string(count) + " " + std::string(to_string(element_type)) +
              " elements cannot fit in the " + std::to_string(in.remaining()) + " bytes left at offset " +
              std::to_string(in.position()));
    }
    return {element_type, count};
  }

  static void check_bool(ByteReader& in) {
    const auto value = in.read<std::uint8_t>("bool value");
    if (value > 1) in.fail("bool value " + std::to_string(value) + " is neither 0 nor 1");
  }

  static void skip_array_elements(ByteReader& in, const ArrayInfo& array, int depth) {
    switch (array.element_type) {
      case ValueType::boolean:
        for (std::uint64_t i = 0; i < array.count; ++i) check_bool(in);
        return;
      case ValueType::string:
        for (std::uint64_t i = 0; i < array.count; ++i) in.read_string("array element");
        return;
      case ValueType::array:
        for (std::uint64_t i = 0; i < array.count; ++i) {
          skip_array_elements(in, read_array_header(in, depth + 1), depth + 1);
        }
        return;
      default:
        // The count was bounded by remaining() / element size, so no overflow.
        in.skip(array.count * fixed_size(array.element_type), "array elements");
        return;
    }
  }

  static void skip_scalar(ByteReader& in, ValueType type) {
    if (type == ValueType::string) {
      in.read_string("string value");
    } else if (type == ValueType::boolean) {
      check_bool(in);
    } else {
      in.skip(fixed_size(type), std::string(to_string(type)) + " value");
    }
  }

  void parse_header(ByteReader& in, std::uint64_t& tensor_count, std::uint64_t& kv_count) {
    const auto magic = in.read<std::uint32_t>("magic");
    if (magic != kMagic) {
      std::string shown;
      for (int i = 0; i < 4; ++i) {
        const auto c = static_cast<char>((magic >> (8 * i)) & 0xFFU);
        shown += (c >= 0x20 && c < 0x7F) ? c : '?';
      }
      in.fail("bad magic \"" + shown + "\" (expected \"GGUF\"): not a GGUF file");
    }
    layout_.version = in.read<std::uint32_t>("version");
    if (layout_.version != 2 && layout_.version != 3) {
      // A big-endian writer stores 2 or 3 as 0x02000000 or 0x03000000.
      if (layout_.version == 0x02000000U || layout_.version == 0x03000000U) {
        in.fail(Errc::unsupported, "big-endian GGUF files are not supported");
      }
      in.fail(Errc::unsupported,
              "GGUF version " + std::to_string(layout_.version) + " is not supported (only 2 and 3 are)");
    }
    tensor_count = in.read<std::uint64_t>("tensor count");
    kv_count = in.read<std::uint64_t>("metadata key-value count");
    if (kv_count > in.remaining() / kMinEntryBytes) {
      in.fail("metadata key-value count " + std::to_string(kv_count) + " cannot fit in the " +
              std::to_string(in.remaining()) + " bytes after the header");
    }
    if (tensor_count > in.remaining() / kMinTensorInfoBytes) {
      in.fail("tensor count " + std::to_string(tensor_count) + " cannot fit in the " +
              std::to_string(in.remaining()) + " bytes after the header");
    }
  }

  void parse_metadata(ByteReader& in, std::uint64_t kv_count) {
    // No reserve(kv_count): growing per parsed entry keeps memory proportional
    // to entries that really exist, even when a corrupt count is merely plausible.
    for (std::uint64_t i = 0; i < kv_count; ++i) {
      in.set_context("metadata entry " + std::to_string(i));
      std::string key(in.read_string("key"));
      in.set_context("key '" + key + "'");
      if (layout_.key_index.find(key) != layout_.key_index.end()) in.fail("duplicate metadata key");
      const ValueType type = read_value_type(in, "value type");
      Entry e{std::move(key), type, in.position(), {ValueType::uint8, 0}, 0};
      if (type == ValueType::array) {
        e.array = read_array_header(in, 1);
        e.elements_offset = in.position();
        skip_array_elements(in, e.array, 1);
      } else {
        skip_scalar(in, type);
      }
      layout_.key_index.emplace(e.key, layout_.entries.size());
      layout_.entries.push_back(std::move(e));
    }
    in.set_context("");
    if (const auto* e = layout_.find("general.alignment")) {
      in.set_context("key 'general.alignment'");
      if (e->type != ValueType::uint32) {
        in.fail("has type " + std::string(to_string(e->type)) + ", expected uint32");
      }
      const auto value = load_le<std::uint32_t>(bytes_.data() + e->value_offset);
      if (!std::has_single_bit(value)) {
        in.fail("alignment " + std::to_string(value) + " is not a power of two");
      }
      layout_.alignment = value;
      in.set_context("");
    }
  }

  static TensorType read_tensor_type(ByteReader& in) {
    const auto id = in.read<std::uint32_t>("tensor type");
    switch (static_cast<TensorType>(id)) {
      case TensorType::f32:
      case TensorType::f16:
      case TensorType::q8_0:
      case TensorType::bf16:
        return static_cast<TensorType>(id);
    }
    if (const auto name = ggml_type_name(id)) {
      in.fail(Errc::unsupported, "tensor type " + std::string(*name) + " (type " + std::to_string(id) +
                                     ") is not supported (f32, f16, bf16 and q8_0 are)");
    }
    in.fail("unknown tensor type id " + std::to_string(id));
  }

  void parse_tensor_infos(ByteReader& in, std::uint64_t tensor_count) {
    for (std::uint64_t i = 0; i < tensor_count; ++i) {
      in.set_context("tensor " + std::to_string(i));
      TensorInfo info{};
      info.name = std::string(in.read_string("tensor name"));
      in.set_context("tensor '" + info.name + "'");
      if (layout_.tensor_index.find(info.name) != layout_.tensor_index.end()) {
        in.fail("duplicate tensor name");
      }
      const auto n_dims = in.read<std::uint32_t>("dimension count");
      if (n_dims == 0 || n_dims > kMaxDims) {
        in.fail("has " + std::to_string(n_dims) + " dimensions (must be 1 to " + std::to_string(kMaxDims) +
                ")");
      }
      info.n_elements = 1;
      for (std::uint32_t d = 0; d < n_dims; ++d) {
        const auto dim = in.read<std::uint64_t>("dimension");
        if (dim == 0) in.fail("dimension " + std::to_string(d) + " is 0");
        const auto product = checked_mul(info.n_elements, dim);
        if (!product) in.fail("element count overflows 64 bits at dimension " + std::to_string(d));
        info.n_elements = *product;
        info.dims.push_back(dim);
      }
      info.type = read_tensor_type(in);
      info.offset = in.read<std::uint64_t>("data offset");
      if (info.offset % layout_.alignment != 0) {
        in.fail("data offset " + std::to_string(info.offset) + " is not a multiple of the alignment " +
                std::to_string(layout_.alignment));
      }
      if (info.type == TensorType::q8_0 && info.dims[0] % kQ8_0BlockElements != 0) {
        in.fail("q8_0 row length " + std::to_string(info.dims[0]) + " is not a multiple of " +
                std::to_string(kQ8_0BlockElements));
      }
      const auto size = tensor_data_bytes(info.type, info.n_elements);
      if (!size) in.fail("data size overflows 64 bits");
      info.n_bytes = *size;
      layout_.tensor_index.emplace(info.name, layout_.tensors.size());
      layout_.tensors.push_back(std::move(info));
    }
    in.set_context("");
  }

  void check_tensor_data(ByteReader& in) {
    const auto aligned = checked_add(in.position(), layout_.alignment - 1);
    if (!aligned) in.fail("data section offset overflows 64 bits");
    layout_.data_offset = *aligned & ~static_cast<std::uint64_t>(layout_.alignment - 1);
    const std::uint64_t size = bytes_.size();
    const std::uint64_t data_size = layout_.data_offset < size ? size - layout_.data_offset : 0;
    for (const auto& t : layout_.tensors) {
      if (!range_fits(t.offset, t.n_bytes, data_size)) {
        in.fail("tensor '" + t.name + "': data [offset " + std::to_string(t.offset) + ", " +
                std::to_string(t.n_bytes) + " bytes] extends past end of file (size " + std::to_string(size) +
                ", data section starts at " + std::to_string(layout_.data_offset) + ")");
      }
    }
    std::vector<std::size_t> order(layout_.tensors.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [this](std::size_t a, std::size_t b) {
      return layout_.tensors[a].offset < layout_.tensors[b].offset;
    });
    for (std::size_t i = 1; i < order.size(); ++i) {
      const auto& before = layout_.tensors[order[i - 1]];
      const auto& after = layout_.tensors[order[i]];
      if (before.offset + before.n_bytes > after.offset) {
        in.fail("tensors '" + before.name + "' [offset " + std::to_string(before.offset) + ", " +
                std::to_string(before.n_bytes) + " bytes] and '" + after.name + "' [offset " +
                std::to_string(after.offset) + "] overlap");
      }
    }
  }

  std::span<const std::byte> bytes_;  // the whole file
  Layout layout_;
};

}  // namespace kvbits::gguf::detail
