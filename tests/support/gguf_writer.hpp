// SPDX-License-Identifier: MIT
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace kvbits::test {

/// GGUF value type ids and ggml tensor type ids, spelled out independently of
/// the reader so the tests check the reader against the format, not itself.
namespace gguf_id {
inline constexpr std::uint32_t kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5,
                               kFloat32 = 6, kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11,
                               kFloat64 = 12;
inline constexpr std::uint32_t kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8, kBf16 = 30;
}  // namespace gguf_id

/// Little-endian byte sink for hand-built (and deliberately broken) GGUF bytes.
class ByteSink {
 public:
  ByteSink& u8(std::uint8_t v) { return put(v); }
  ByteSink& u16(std::uint16_t v) { return put(v); }
  ByteSink& u32(std::uint32_t v) { return put(v); }
  ByteSink& u64(std::uint64_t v) { return put(v); }
  ByteSink& i8(std::int8_t v) { return put(static_cast<std::uint8_t>(v)); }
  ByteSink& i16(std::int16_t v) { return put(static_cast<std::uint16_t>(v)); }
  ByteSink& i32(std::int32_t v) { return put(static_cast<std::uint32_t>(v)); }
  ByteSink& i64(std::int64_t v) { return put(static_cast<std::uint64_t>(v)); }
  ByteSink& f32(float v) { return put(std::bit_cast<std::uint32_t>(v)); }
  ByteSink& f64(double v) { return put(std::bit_cast<std::uint64_t>(v)); }
  /// GGUF string: u64 length then the bytes.
  ByteSink& str(std::string_view s) {
    u64(s.size());
    for (const char c : s) bytes_.push_back(static_cast<std::byte>(c));
    return *this;
  }
  ByteSink& raw(const std::vector<std::byte>& more) {
    bytes_.insert(bytes_.end(), more.begin(), more.end());
    return *this;
  }
  /// Appends zero bytes until the size is a multiple of `alignment`.
  ByteSink& pad_to(std::size_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(std::byte{0});
    return *this;
  }
  /// GGUF header: magic, version, tensor count, key-value count.
  ByteSink& header(std::uint32_t version, std::uint64_t tensors, std::uint64_t kvs) {
    return u32(0x46554747U).u32(version).u64(tensors).u64(kvs);
  }
  [[nodiscard]] std::size_t size() const { return bytes_.size(); }
  [[nodiscard]] const std::vector<std::byte>& bytes() const { return bytes_; }

 private:
  template <class T>
  ByteSink& put(T v) {
    static_assert(std::is_unsigned_v<T>);
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      bytes_.push_back(static_cast<std::byte>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xFFU));
    }
    return *this;
  }

  std::vector<std::byte> bytes_;
};

/// Overwrites `sizeof(T)` bytes at `offset` with `value`, little-endian (to corrupt a file).
template <class T>
void patch_le(std::vector<std::byte>& bytes, std::size_t offset, T value) {
  static_assert(std::is_unsigned_v<T>);
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    bytes.at(offset + i) = static_cast<std::byte>((static_cast<std::uint64_t>(value) >> (8 * i)) & 0xFFU);
  }
}

/**
 * Builds valid GGUF files: metadata entries are encoded as added, tensors are
 * laid out back to back at the alignment. Records where each tensor info and
 * data block landed so tests can corrupt precise fields.
 */
class GgufWriter {
 public:
  struct Tensor {
    std::string name;
    std::vector<std::uint64_t> dims;  // ne[0] first
    std::uint32_t type;
    std::vector<std::byte> data;  // raw encoded elements
  };

  explicit GgufWriter(std::uint32_t version = 3) : version_(version) {}

  /// Adds a metadata entry whose value bytes are already encoded.
  GgufWriter& add_raw(std::string_view key, std::uint32_t type, const std::vector<std::byte>& value) {
    kv_.str(key).u32(type).raw(value);
    ++kv_count_;
    return *this;
  }
  GgufWriter& add_u8(std::string_view key, std::uint8_t v) {
    return add(key, gguf_id::kUint8, ByteSink().u8(v));
  }
  GgufWriter& add_i8(std::string_view key, std::int8_t v) {
    return add(key, gguf_id::kInt8, ByteSink().i8(v));
  }
  GgufWriter& add_u16(std::string_view key, std::uint16_t v) {
    return add(key, gguf_id::kUint16, ByteSink().u16(v));
  }
  GgufWriter& add_i16(std::string_view key, std::int16_t v) {
    return add(key, gguf_id::kInt16, ByteSink().i16(v));
  }
  GgufWriter& add_u32(std::string_view key, std::uint32_t v) {
    return add(key, gguf_id::kUint32, ByteSink().u32(v));
  }
  GgufWriter& add_i32(std::string_view key, std::int32_t v) {
    return add(key, gguf_id::kInt32, ByteSink().i32(v));
  }
  GgufWriter& add_f32(std::string_view key, float v) {
    return add(key, gguf_id::kFloat32, ByteSink().f32(v));
  }
  GgufWriter& add_bool(std::string_view key, bool v) {
    return add(key, gguf_id::kBool, ByteSink().u8(v ? 1 : 0));
  }
  GgufWriter& add_string(std::string_view key, std::string_view v) {
    return add(key, gguf_id::kString, ByteSink().str(v));
  }
  GgufWriter& add_u64(std::string_view key, std::uint64_t v) {
    return add(key, gguf_id::kUint64, ByteSink().u64(v));
  }
  GgufWriter& add_i64(std::string_view key, std::int64_t v) {
    return add(key, gguf_id::kInt64, ByteSink().i64(v));
  }
  GgufWriter& add_f64(std::string_view key, double v) {
    return add(key, gguf_id::kFloat64, ByteSink().f64(v));
  }

  GgufWriter& add_string_array(std::string_view key, const std::vector<std::string>& values) {
    ByteSink s;
    s.u32(gguf_id::kString).u64(values.size());
    for (const auto& v : values) s.str(v);
    return add(key, gguf_id::kArray, s);
  }
  GgufWriter& add_f32_array(std::string_view key, const std::vector<float>& values) {
    ByteSink s;
    s.u32(gguf_id::kFloat32).u64(values.size());
    for (const float v : values) s.f32(v);
    return add(key, gguf_id::kArray, s);
  }
  GgufWriter& add_i32_array(std::string_view key, const std::vector<std::int32_t>& values) {
    ByteSink s;
    s.u32(gguf_id::kInt32).u64(values.size());
    for (const auto v : values) s.i32(v);
    return add(key, gguf_id::kArray, s);
  }

  /// Sets general.alignment (as uint32) and lays tensors out at that alignment.
  GgufWriter& alignment(std::uint32_t value) {
    alignment_ = value;
    return add_u32("general.alignment", value);
  }

  GgufWriter& add_tensor(std::string name, std::vector<std::uint64_t> dims, std::uint32_t type,
                         std::vector<std::byte> data) {
    tensors_.push_back({std::move(name), std::move(dims), type, std::move(data)});
    return *this;
  }

  /// @return the complete file.
  [[nodiscard]] std::vector<std::byte> build() {
    ByteSink out;
    out.header(version_, tensors_.size(), kv_count_).raw(kv_.bytes());
    std::uint64_t offset = 0;
    info_offsets_.clear();
    data_offsets_.clear();
    for (const auto& t : tensors_) {
      info_offsets_.push_back(out.size());
      out.str(t.name).u32(static_cast<std::uint32_t>(t.dims.size()));
      for (const auto d : t.dims) out.u64(d);
      out.u32(t.type).u64(offset);
      data_offsets_.push_back(offset);
      offset += t.data.size();
      offset = (offset + alignment_ - 1) / alignment_ * alignment_;
    }
    out.pad_to(alignment_);
    data_start_ = out.size();
    // No padding after the last tensor, so every strict prefix of the file is truncated.
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      out.raw(tensors_[i].data);
      if (i + 1 < tensors_.size()) out.pad_to(alignment_);
    }
    return out.bytes();
  }

  /// File offset of tensor i's info (its name's length field); valid after build().
  [[nodiscard]] std::size_t info_offset(std::size_t i) const { return info_offsets_.at(i); }
  /// File offset of tensor i's u64 data offset field; valid after build().
  [[nodiscard]] std::size_t offset_field(std::size_t i) const {
    const auto& t = tensors_.at(i);
    return info_offsets_.at(i) + 8 + t.name.size() + 4 + 8 * t.dims.size() + 4;
  }
  /// Offset of tensor i's data inside the data section; valid after build().
  [[nodiscard]] std::uint64_t data_offset(std::size_t i) const { return data_offsets_.at(i); }
  /// File offset of the data section; valid after build().
  [[nodiscard]] std::size_t data_start() const { return data_start_; }
  /// Size in bytes of the header (magic, version, counts).
  static constexpr std::size_t kHeaderBytes = 24;

 private:
  GgufWriter& add(std::string_view key, std::uint32_t type, const ByteSink& value) {
    return add_raw(key, type, value.bytes());
  }

  std::uint32_t version_;
  std::uint32_t alignment_ = 32;
  ByteSink kv_;  // encoded metadata entries
  std::uint64_t kv_count_ = 0;
  std::vector<Tensor> tensors_;
  std::vector<std::size_t> info_offsets_;    // [tensors] file offset of each tensor info
  std::vector<std::uint64_t> data_offsets_;  // [tensors] offset of each tensor's data in the data section
  std::size_t data_start_ = 0;
};

/// Encodes floats as a GGUF F32 payload.
inline std::vector<std::byte> f32_bytes(const std::vector<float>& values) {
  ByteSink s;
  for (const float v : values) s.f32(v);
  return s.bytes();
}

/// Encodes 16-bit patterns (fp16 or bf16) as a payload.
inline std::vector<std::byte> u16_bytes(const std::vector<std::uint16_t>& values) {
  ByteSink s;
  for (const auto v : values) s.u16(v);
  return s.bytes();
}

}  // namespace kvbits::test
