// SPDX-License-Identifier: MIT
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "gguf/gguf.hpp"
#include "support/fuzz_corpus.hpp"
#include "support/gguf_writer.hpp"
#include "support/shared_data.hpp"

namespace Catch {
template <>
struct StringMaker<kvbits::Errc> {
  static std::string convert(kvbits::Errc code) { return std::string(kvbits::to_string(code)); }
};
template <>
struct StringMaker<kvbits::gguf::ValueType> {
  static std::string convert(kvbits::gguf::ValueType type) {
    return std::string(kvbits::gguf::to_string(type));
  }
};
}  // namespace Catch

namespace {

using kvbits::Errc;
using kvbits::gguf::File;
using kvbits::gguf::TensorType;
using kvbits::gguf::ValueType;
using kvbits::test::ByteSink;
using kvbits::test::GgufWriter;
using kvbits::test::patch_le;
namespace id = kvbits::test::gguf_id;
using Catch::Contains;

constexpr std::uint64_t kHuge = std::uint64_t{1} << 63;
constexpr std::uint64_t kMaxU64 = std::numeric_limits<std::uint64_t>::max();

struct Failure {
  Errc code;
  std::string message;
};

/// Runs `call` expecting it to throw kvbits::Error; fails the test when it returns.
template <class Call>
Failure failure_of(Call&& call, const std::string& description) {
  try {
    call();
  } catch (const kvbits::Error& e) {
    return {e.code(), e.what()};
  }
  FAIL(description << " did not throw kvbits::Error");
  return {};
}

/// Parses `bytes` expecting a kvbits::Error; saves the bytes as corpus entry `name`
/// unless the name is empty (parameter sweeps keep one representative).
Failure parse_failure(const std::string& name, const std::vector<std::byte>& bytes) {
  if (!name.empty()) kvbits::test::save_corpus("gguf", name, bytes);
  return failure_of([&] { (void)File::parse(bytes); }, "parsing broken file '" + name + "'");
}

Failure open_failure(const std::filesystem::path& path) {
  return failure_of([&] { (void)File::open(path.string()); }, "opening " + path.string());
}

std::vector<std::byte> q8_0_block(std::uint16_t scale_bits, const std::vector<std::int8_t>& q) {
  ByteSink s;
  s.u16(scale_bits);
  for (const auto v : q) s.i8(v);
  return s.bytes();
}

/// A small valid file using every feature the corruption tests break.
struct SmallFile {
  GgufWriter writer;
  std::vector<std::byte> bytes;
};

SmallFile small_file() {
  SmallFile f;
  ByteSink nested;  // [[1, 2], [3]] as arrays of int32
  nested.u32(id::kArray).u64(2);
  nested.u32(id::kInt32).u64(2).i32(1).i32(2);
  nested.u32(id::kInt32).u64(1).i32(3);
  std::vector<std::int8_t> q(32);
  for (std::size_t j = 0; j < q.size(); ++j) q[j] = static_cast<std::int8_t>(j) - 16;
  f.writer.add_string("general.architecture", "llama")
      .add_u32("llama.block_count", 5)
      .add_string_array("tokenizer.ggml.tokens", {"<unk>", "a", "bc"})
      .add_raw("test.nested", id::kArray, nested.bytes())
      .add_bool("test.flag", true)
      .add_tensor("a", {8}, id::kF32, kvbits::test::f32_bytes({1, 2, 3, 4, 5, 6, 7, 8}))
      .add_tensor("b", {2, 2}, id::kF16, kvbits::test::u16_bytes({0x3C00, 0xC000, 0x0000, 0x3800}))
      .add_tensor("c", {32}, id::kQ8_0, q8_0_block(0x3400, q));
  f.bytes = f.writer.build();
  return f;
}

/// One tensor described by hand (no metadata), followed by `data_bytes` zero bytes.
std::vector<std::byte> one_tensor(std::string_view name, const std::vector<std::uint64_t>& dims,
                                  std::uint32_t type, std::uint64_t offset, std::size_t data_bytes) {
  ByteSink s;
  s.header(3, 1, 0).str(name).u32(static_cast<std::uint32_t>(dims.size()));
  for (const auto d : dims) s.u64(d);
  s.u32(type).u64(offset).pad_to(32);
  s.raw(std::vector<std::byte>(data_bytes));
  return s.bytes();
}

/// A file with no tensors whose only metadata entry is `key` of `type` with `value` bytes.
std::vector<std::byte> one_entry(std::string_view key, std::uint32_t type, const ByteSink& value) {
  ByteSink s;
  s.header(3, 0, 1).str(key).u32(type).raw(value.bytes());
  return s.bytes();
}

std::filesystem::path temp_path(const std::string& name) {
  // The pid keeps concurrent runs (plain and sanitizer builds) apart.
  return std::filesystem::temp_directory_path() /
         ("kvbits_test_gguf_" + std::to_string(::getpid()) + "_" + name);
}

void write_file(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::uint32_t bits_of(float v) { return std::bit_cast<std::uint32_t>(v); }

}  // namespace

TEST_CASE("gguf: stories260K metadata and tensors match the model card", "[gguf]") {
  const auto path = kvbits::test::shared_file("models/stories260K.gguf");
  const File file = File::open(path.string());

  CHECK(file.version() == 3);
  CHECK(file.alignment() == 32);
  CHECK(file.data_offset() == 14176);
  CHECK(file.get_string("general.architecture") == "llama");
  CHECK(file.get_string("tokenizer.ggml.model") == "llama");
  CHECK(file.get_uint("llama.block_count") == 5);
  CHECK(file.get_uint("llama.embedding_length") == 64);
  CHECK(file.get_uint("llama.feed_forward_length") == 172);
  CHECK(file.get_uint("llama.attention.head_count") == 8);
  CHECK(file.get_uint("llama.attention.head_count_kv") == 4);
  CHECK(file.get_uint("llama.rope.dimension_count") == 8);
  CHECK(file.get_uint("tokenizer.ggml.bos_token_id") == 1);
  CHECK(file.get_uint("tokenizer.ggml.eos_token_id") == 2);
  CHECK(file.type_of("llama.attention.layer_norm_rms_epsilon") == ValueType::float32);
  CHECK(file.get_float("llama.attention.layer_norm_rms_epsilon") == Approx(1e-5).epsilon(1e-6));
  CHECK_FALSE(file.find_float("llama.rope.freq_base").has_value());

  const auto keys = file.keys();
  REQUIRE(keys.size() == 19);
  CHECK(keys.front() == "tokenizer.ggml.tokens");
  CHECK(keys.back() == "llama.attention.layer_norm_rms_epsilon");

  const auto tokens = file.get_string_array("tokenizer.ggml.tokens");
  REQUIRE(tokens.size() == 512);
  CHECK(tokens[0] == "<unk>");
  CHECK(tokens[1] == "<s>");
  CHECK(tokens[2] == "</s>");
  CHECK(tokens[3] == "<0x00>");
  CHECK(file.get_float_array("tokenizer.ggml.scores").size() == 512);
  const auto token_types = file.get_int_array("tokenizer.ggml.token_type");
  REQUIRE(token_types.size() == 512);
  CHECK(token_types[0] == 2);  // unknown
  CHECK(token_types[1] == 3);  // control
  CHECK(token_types[3] == 6);  // byte

  const auto& tensors = file.tensors();
  REQUIRE(tensors.size() == 3 + 5 * 9);
  CHECK(tensors[0].name == "token_embd.weight");
  CHECK(tensors[1].name == "output_norm.weight");
  CHECK(tensors[2].name == "output.weight");
  struct Expected {
    std::string suffix;
    std::vector<std::uint64_t> dims;
  };
  const std::vector<Expected> per_layer = {
      {"attn_q.weight", {64, 64}},      {"attn_k.weight", {64, 32}},  {"attn_v.weight", {64, 32}},
      {"attn_output.weight", {64, 64}}, {"attn_norm.weight", {64}},   {"ffn_gate.weight", {64, 172}},
      {"ffn_down.weight", {172, 64}},   {"ffn_up.weight", {64, 172}}, {"ffn_norm.weight", {64}}};
  for (int layer = 0; layer < 5; ++layer) {
    for (const auto& e : per_layer) {
      const std::string name = "blk." + std::to_string(layer) + "." + e.suffix;
      INFO("tensor " << name);
      const auto* info = file.find_tensor(name);
      REQUIRE(info != nullptr);
      CHECK(info->dims == e.dims);
      CHECK(info->type == TensorType::f32);
    }
  }
  std::uint64_t total_bytes = 0;
  for (const auto& t : tensors) {
    INFO("tensor " << t.name);
    CHECK(t.type == TensorType::f32);
    CHECK(t.n_bytes == 4 * t.n_elements);
    CHECK(t.offset % 32 == 0);
    total_bytes += t.n_bytes;
  }
  CHECK(total_bytes == 1185376 - 14176);  // tensors fill the data section exactly

  const auto* embd = file.find_tensor("token_embd.weight");
  REQUIRE(embd != nullptr);
  CHECK(embd->dims == std::vector<std::uint64_t>{64, 512});
  CHECK(file.find_tensor("blk.5.attn_q.weight") == nullptr);
  const auto values = file.tensor_f32("token_embd.weight");
  REQUIRE(values.size() == 64 * 512);
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      INFO("token_embd.weight[" << i << "] = " << values[i]);
      FAIL_CHECK("non-finite embedding value");
    }
  }
  // Bit patterns read independently from the file with Python's struct module.
  CHECK(bits_of(values[0]) == 0xbe96e950U);
  CHECK(bits_of(values[1]) == 0x3f0fd864U);
  CHECK(bits_of(values.back()) == 0xbed91acdU);
  CHECK(bits_of(file.tensor_f32("output_norm.weight")[0]) == 0x401d54efU);
  const auto raw = file.tensor_bytes(*embd);
  REQUIRE(raw.size() == values.size() * 4);
  CHECK(std::memcmp(raw.data(), values.data(), raw.size()) == 0);

  const auto missing = [&] { (void)file.tensor_f32("no.such.tensor"); };
  CHECK_THROWS_WITH(missing(), Contains("no tensor named 'no.such.tensor'"));
}

TEST_CASE("gguf: open reports I/O errors and broken files with the path", "[gguf]") {
  SECTION("missing file") {
    const auto path = temp_path("does_not_exist.gguf");
    std::filesystem::remove(path);
    const auto e = open_failure(path);
    CHECK(e.code == Errc::io_error);
    CHECK_THAT(e.message, Contains(path.string()) && Contains("cannot open"));
  }
  SECTION("directory") {
    const auto dir = std::filesystem::temp_directory_path();
    const auto e = open_failure(dir);
    CHECK(e.code == Errc::io_error);
    CHECK_THAT(e.message, Contains("not a regular file"));
  }
  SECTION("empty file") {
    const auto path = temp_path("empty.gguf");
    write_file(path, {});
    const auto e = open_failure(path);
    CHECK(e.code == Errc::corrupt_data);
    CHECK_THAT(e.message, Contains(path.string()) && Contains("magic"));
    std::filesystem::remove(path);
  }
  SECTION("stories260K missing its last byte") {
    const auto model = kvbits::test::shared_file("models/stories260K.gguf");
    std::ifstream in(model, std::ios::binary);
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(chars.size() == 1185376);
    const auto path = temp_path("stories260K_truncated.gguf");
    write_file(path, std::as_bytes(std::span(chars.data(), chars.size() - 1)));
    const auto e = open_failure(path);
    CHECK(e.code == Errc::corrupt_data);
    CHECK_THAT(e.message, Contains(path.string()) && Contains("tensor 'blk.4.ffn_norm.weight'") &&
                              Contains("[offset 1170944, 256 bytes] extends past end of file"));
    std::filesystem::remove(path);
  }
}

TEST_CASE("gguf: every metadata value type reads back", "[gguf]") {
  for (const std::uint32_t version : {2U, 3U}) {
    INFO("GGUF version " << version);
    GgufWriter w(version);
    w.add_u8("t.u8", 200)
        .add_i8("t.i8", -100)
        .add_u16("t.u16", 60000)
        .add_i16("t.i16", -30000)
        .add_u32("t.u32", 4000000000U)
        .add_i32("t.i32", -2000000000)
        .add_f32("t.f32", 0.25F)
        .add_bool("t.bool", true)
        .add_bool("t.false", false)
        .add_string("t.string", "hello")
        .add_string("t.empty", "")
        .add_u64("t.u64", 0xFFFFFFFFFFFFFFF0ULL)
        .add_i64("t.i64", -5)
        .add_i64("t.i64pos", 7)
        .add_f64("t.f64", -1.5);
    const auto bytes = w.build();
    kvbits::test::save_corpus("gguf", "valid_all_types_v" + std::to_string(version), bytes);
    const File f = File::parse(bytes);
    CHECK(f.version() == version);
    CHECK(f.tensors().empty());
    CHECK(f.keys() == std::vector<std::string>{"t.u8", "t.i8", "t.u16", "t.i16", "t.u32", "t.i32", "t.f32",
                                               "t.bool", "t.false", "t.string", "t.empty", "t.u64", "t.i64",
                                               "t.i64pos", "t.f64"});
    CHECK(f.type_of("t.u8") == ValueType::uint8);
    CHECK(f.type_of("t.i8") == ValueType::int8);
    CHECK(f.type_of("t.u16") == ValueType::uint16);
    CHECK(f.type_of("t.i16") == ValueType::int16);
    CHECK(f.type_of("t.u32") == ValueType::uint32);
    CHECK(f.type_of("t.i32") == ValueType::int32);
    CHECK(f.type_of("t.f32") == ValueType::float32);
    CHECK(f.type_of("t.bool") == ValueType::boolean);
    CHECK(f.type_of("t.string") == ValueType::string);
    CHECK(f.type_of("t.u64") == ValueType::uint64);
    CHECK(f.type_of("t.i64") == ValueType::int64);
    CHECK(f.type_of("t.f64") == ValueType::float64);

    CHECK(f.get_uint("t.u8") == 200);
    CHECK(f.get_uint("t.u16") == 60000);
    CHECK(f.get_uint("t.u32") == 4000000000U);
    CHECK(f.get_uint("t.u64") == 0xFFFFFFFFFFFFFFF0ULL);
    CHECK(f.get_uint("t.i64pos") == 7);
    CHECK(f.find_uint("t.u16") == std::optional<std::uint64_t>(60000));
    CHECK_FALSE(f.find_uint("t.absent").has_value());
    CHECK(f.get_float("t.f32") == 0.25);
    CHECK(f.get_float("t.f64") == -1.5);
    CHECK(f.get_float("t.i8") == -100.0);
    CHECK(f.get_float("t.i16") == -30000.0);
    CHECK(f.get_float("t.i32") == -2000000000.0);
    CHECK(f.get_float("t.i64") == -5.0);
    CHECK(f.get_float("t.u32") == 4000000000.0);
    CHECK(f.find_float("t.f64") == std::optional<double>(-1.5));
    CHECK_FALSE(f.find_float("t.absent").has_value());
    CHECK(f.get_bool("t.bool"));
    CHECK_FALSE(f.get_bool("t.false"));
    CHECK(f.get_string("t.string") == "hello");
    CHECK(f.get_string("t.empty").empty());
    CHECK(f.find_string("t.string") == std::optional<std::string>("hello"));
    CHECK_FALSE(f.find_string("t.absent").has_value());
    CHECK(f.has("t.f64"));
    CHECK_FALSE(f.has("t.absent"));

    SECTION("wrong types, negative values and missing keys name the key") {
      const auto error_of = [](auto&& call) { return failure_of(call, "the accessor"); };
      auto e = error_of([&] { (void)f.get_uint("t.i8"); });
      CHECK(e.code == Errc::corrupt_data);
      CHECK_THAT(e.message, Contains("key 't.i8' is negative (-100)"));
      e = error_of([&] { (void)f.get_uint("t.f32"); });
      CHECK(e.code == Errc::corrupt_data);
      CHECK_THAT(e.message, Contains("key 't.f32' holds float32, expected an integer"));
      e = error_of([&] { (void)f.find_uint("t.string"); });
      CHECK_THAT(e.message, Contains("key 't.string' holds string"));
      e = error_of([&] { (void)f.get_uint("t.absent"); });
      CHECK(e.code == Errc::invalid_argument);
      CHECK_THAT(e.message, Contains("no metadata key 't.absent'"));
      e = error_of([&] { (void)f.type_of("t.absent"); });
      CHECK(e.code == Errc::invalid_argument);
      e = error_of([&] { (void)f.get_string("t.u8"); });
      CHECK_THAT(e.message, Contains("key 't.u8' holds uint8, expected a string"));
      e = error_of([&] { (void)f.get_bool("t.u8"); });
      CHECK_THAT(e.message, Contains("expected bool"));
      e = error_of([&] { (void)f.get_float("t.bool"); });
      CHECK_THAT(e.message, Contains("key 't.bool' holds bool, expected a number"));
      e = error_of([&] { (void)f.get_string_array("t.string"); });
      CHECK_THAT(e.message, Contains("expected an array of strings"));
    }
  }
}

TEST_CASE("gguf: arrays of every kind, including nested arrays", "[gguf]") {
  ByteSink u8s;
  u8s.u32(id::kUint8).u64(3).u8(0).u8(7).u8(255);
  ByteSink i64s;
  i64s.u32(id::kInt64).u64(2).i64(-9).i64(std::numeric_limits<std::int64_t>::max());
  ByteSink too_big;
  too_big.u32(id::kUint64).u64(2).u64(1).u64(kMaxU64);
  ByteSink f64s;
  f64s.u32(id::kFloat64).u64(2).f64(0.5).f64(-3.0);
  ByteSink bools;
  bools.u32(id::kBool).u64(3).u8(1).u8(0).u8(1);
  ByteSink nested;  // [["x"], [], ["y", "zz"]]
  nested.u32(id::kArray).u64(3);
  nested.u32(id::kString).u64(1).str("x");
  nested.u32(id::kString).u64(0);
  nested.u32(id::kString).u64(2).str("y").str("zz");
  ByteSink deep;  // four levels: [[[[1]]]]
  deep.u32(id::kArray).u64(1).u32(id::kArray).u64(1).u32(id::kArray).u64(1).u32(id::kUint8).u64(1).u8(1);
  GgufWriter w;
  w.add_string_array("a.strings", {"", "x", "hello world"})
      .add_f32_array("a.f32", {1.5F, -2.0F})
      .add_i32_array("a.i32", {-1, 0, 2147483647})
      .add_raw("a.u8", id::kArray, u8s.bytes())
      .add_raw("a.i64", id::kArray, i64s.bytes())
      .add_raw("a.u64big", id::kArray, too_big.bytes())
      .add_raw("a.f64", id::kArray, f64s.bytes())
      .add_raw("a.bool", id::kArray, bools.bytes())
      .add_raw("a.nested", id::kArray, nested.bytes())
      .add_raw("a.deep", id::kArray, deep.bytes())
      .add_string_array("a.empty", {})
      .add_u32("after", 42);  // proves the parser skipped each array exactly
  const auto bytes = w.build();
  kvbits::test::save_corpus("gguf", "valid_arrays", bytes);
  const File f = File::parse(bytes);

  CHECK(f.get_string_array("a.strings") == std::vector<std::string>{"", "x", "hello world"});
  CHECK(f.get_float_array("a.f32") == std::vector<float>{1.5F, -2.0F});
  CHECK(f.get_float_array("a.f64") == std::vector<float>{0.5F, -3.0F});
  CHECK(f.get_int_array("a.i32") == std::vector<std::int64_t>{-1, 0, 2147483647});
  CHECK(f.get_int_array("a.u8") == std::vector<std::int64_t>{0, 7, 255});
  CHECK(f.get_int_array("a.i64") == std::vector<std::int64_t>{-9, std::numeric_limits<std::int64_t>::max()});
  CHECK_THROWS_WITH(f.get_int_array("a.u64big"),
                    Contains("key 'a.u64big': element 1") && Contains("does not fit in int64"));
  CHECK(f.get_string_array("a.empty").empty());
  CHECK(f.get_uint("after") == 42);

  CHECK(f.type_of("a.nested") == ValueType::array);
  CHECK(f.array_info("a.nested").element_type == ValueType::array);
  CHECK(f.array_info("a.nested").count == 3);
  CHECK(f.array_info("a.bool").element_type == ValueType::boolean);
  CHECK(f.array_info("a.deep").count == 1);
  CHECK_THROWS_WITH(f.get_int_array("a.nested"),
                    Contains("key 'a.nested' holds an array of array, expected an array of integers"));
  CHECK_THROWS_WITH(f.get_float_array("a.i32"), Contains("holds an array of int32"));
  CHECK_THROWS_WITH(f.get_string_array("a.f32"), Contains("holds an array of float32"));
  CHECK_THROWS_WITH(f.get_uint("a.u8"), Contains("holds an array of uint8, expected an integer"));
  CHECK_THROWS_WITH(f.array_info("after"), Contains("key 'after' holds uint32, expected an array"));
}

TEST_CASE("gguf: f16, bf16 and q8_0 tensors convert to the known floats", "[gguf]") {
  const std::vector<std::uint16_t> half_bits = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x0400,
                                                0x8000, 0x3555, 0x7C00, 0xFC00, 0x03FF};
  const std::vector<float> half_values = {1.0F,  -2.0F,           65504.0F, 0x1p-24F,  0x1p-14F,
                                          -0.0F, 0.333251953125F, INFINITY, -INFINITY, 0x3FFp-24F};
  const std::vector<std::uint16_t> bf16_bits = {0x3F80, 0xC040, 0x4049, 0x0001, 0x7F80, 0xFF7F};
  const std::vector<float> bf16_values = {1.0F, -3.0F, 3.140625F, 0x1p-133F, INFINITY, -0x1.FEp127F};
  std::vector<std::int8_t> q0(32);
  std::vector<std::int8_t> q1(32);
  for (std::size_t j = 0; j < 32; ++j) {
    q0[j] = static_cast<std::int8_t>(static_cast<int>(j) * 8 - 128);  // -128 ... 120
    q1[j] = static_cast<std::int8_t>(127 - static_cast<int>(j));
  }
  auto q8 = q8_0_block(0x3400, q0);            // d = 0.25
  const auto block1 = q8_0_block(0xB800, q1);  // d = -0.5
  q8.insert(q8.end(), block1.begin(), block1.end());

  for (const std::uint32_t alignment : {32U, 1U, 64U, 4096U}) {
    INFO("alignment " << alignment);
    GgufWriter w;
    if (alignment != 32) w.alignment(alignment);
    w.add_tensor("half", {5, 2}, id::kF16, kvbits::test::u16_bytes(half_bits))
        .add_tensor("brain", {3, 1, 2}, id::kBf16, kvbits::test::u16_bytes(bf16_bits))
        .add_tensor("q8", {32, 2, 1, 1}, id::kQ8_0, q8)
        .add_tensor("plain", {3}, id::kF32, kvbits::test::f32_bytes({0.5F, -1.0F, 1e30F}));
    const auto bytes = w.build();
    if (alignment != 4096)
      kvbits::test::save_corpus("gguf", "valid_tensors_align" + std::to_string(alignment), bytes);
    const File f = File::parse(bytes);
    CHECK(f.alignment() == alignment);
    CHECK(f.data_offset() % alignment == 0);
    CHECK(f.data_offset() == w.data_start());

    const auto& t = f.tensors();
    REQUIRE(t.size() == 4);
    CHECK(t[0].name == "half");
    CHECK(t[0].type == TensorType::f16);
    CHECK(t[0].dims == std::vector<std::uint64_t>{5, 2});
    CHECK(t[0].n_elements == 10);
    CHECK(t[0].n_bytes == 20);
    CHECK(t[1].type == TensorType::bf16);
    CHECK(t[1].n_bytes == 12);
    CHECK(t[2].type == TensorType::q8_0);
    CHECK(t[2].dims.size() == 4);
    CHECK(t[2].n_elements == 64);
    CHECK(t[2].n_bytes == 68);
    CHECK(t[3].type == TensorType::f32);
    for (std::size_t i = 0; i < t.size(); ++i) {
      INFO("tensor " << t[i].name);
      CHECK(t[i].offset == w.data_offset(i));
      CHECK(t[i].offset % alignment == 0);
    }
    const auto raw = f.tensor_bytes(t[2]);
    REQUIRE(raw.size() == q8.size());
    CHECK(std::memcmp(raw.data(), q8.data(), q8.size()) == 0);

    const auto half = f.tensor_f32("half");
    REQUIRE(half.size() == half_values.size());
    for (std::size_t i = 0; i < half.size(); ++i) {
      INFO("f16 element " << i << " bits 0x" << std::hex << half_bits[i] << std::dec << ": expected "
                          << half_values[i] << ", got " << half[i]);
      CHECK(bits_of(half[i]) == bits_of(half_values[i]));
    }
    const auto brain = f.tensor_f32("brain");
    REQUIRE(brain.size() == bf16_values.size());
    for (std::size_t i = 0; i < brain.size(); ++i) {
      INFO("bf16 element " << i << ": expected " << bf16_values[i] << ", got " << brain[i]);
      CHECK(bits_of(brain[i]) == bits_of(bf16_values[i]));
    }
    const auto q = f.tensor_f32("q8");
    REQUIRE(q.size() == 64);
    for (std::size_t j = 0; j < 32; ++j) {
      INFO("q8_0 element " << j);
      CHECK(q[j] == 0.25F * static_cast<float>(q0[j]));
      CHECK(q[32 + j] == -0.5F * static_cast<float>(q1[j]));
    }
    CHECK(q[0] == -32.0F);   // -128 * 0.25
    CHECK(q[32] == -63.5F);  // 127 * -0.5
    CHECK(f.tensor_f32("plain") == std::vector<float>{0.5F, -1.0F, 1e30F});
  }

  SECTION("the half decoder is exact for all 65536 patterns against float arithmetic") {
    for (std::uint32_t bits = 0; bits < 0x10000U; ++bits) {
      const auto h = static_cast<std::uint16_t>(bits);
      const std::uint32_t exponent = (bits >> 10) & 0x1FU;
      const std::uint32_t mantissa = bits & 0x3FFU;
      const float sign = (bits & 0x8000U) != 0 ? -1.0F : 1.0F;
      const float got = kvbits::half_to_float(h);
      if (exponent == 0x1F) {
        if (mantissa == 0) {
          CHECK(got == sign * INFINITY);
        } else if (!std::isnan(got)) {
          FAIL_CHECK("half NaN 0x" << std::hex << bits << " decoded to " << got);
        }
        continue;
      }
      const float expected = exponent == 0 ? sign * std::ldexp(static_cast<float>(mantissa), -24)
                                           : sign * std::ldexp(static_cast<float>(mantissa + 1024),
                                                               static_cast<int>(exponent) - 25);
      if (bits_of(got) != bits_of(expected)) {
        FAIL_CHECK("half 0x" << std::hex << bits << std::dec << ": expected " << expected << ", got " << got);
      }
    }
  }
}

TEST_CASE("gguf: a file is movable and owns its bytes", "[gguf]") {
  auto small = small_file();
  kvbits::test::save_corpus("gguf", "valid_small", small.bytes);
  File a = File::parse(small.bytes);
  std::fill(small.bytes.begin(), small.bytes.end(), std::byte{0xAB});  // the copy is independent
  File b = std::move(a);
  CHECK(b.get_string("general.architecture") == "llama");
  CHECK(b.tensor_f32("a") == std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8});
  File c = File::parse(small_file().bytes);
  c = std::move(b);
  CHECK(c.get_string_array("tokenizer.ggml.tokens") == std::vector<std::string>{"<unk>", "a", "bc"});
  CHECK(c.tensor_f32("b") == std::vector<float>{1.0F, -2.0F, 0.0F, 0.5F});
  CHECK(c.get_bool("test.flag"));
  CHECK(c.array_info("test.nested").count == 2);

  // A TensorInfo that is not this file's cannot read outside it.
  auto forged = c.tensors()[0];
  forged.offset = 1U << 20;
  CHECK_THROWS_WITH(c.tensor_bytes(forged), Contains("is not inside the data section"));
  forged = c.tensors()[0];
  forged.n_elements = 9;
  CHECK_THROWS_WITH(c.tensor_f32(forged), Contains("9 f32 elements do not take 32 bytes"));
}

TEST_CASE("gguf: truncation at every byte is an error, never a crash", "[gguf]") {
  const auto small = small_file();
  REQUIRE(File::parse(small.bytes).tensors().size() == 3);
  std::size_t rejected = 0;
  for (std::size_t n = 0; n < small.bytes.size(); ++n) {
    const std::span<const std::byte> prefix(small.bytes.data(), n);
    try {
      (void)File::parse(prefix);
      FAIL_CHECK("prefix of " << n << " of " << small.bytes.size() << " bytes was accepted");
    } catch (const kvbits::Error& e) {
      if (e.code() != Errc::corrupt_data) {
        FAIL_CHECK("prefix of " << n << " bytes: expected corrupt_data, got " << e.what());
      } else {
        ++rejected;
      }
    }
  }
  CHECK(rejected == small.bytes.size());
  for (const std::size_t n : {60UL, small.writer.info_offset(1) + 3, small.bytes.size() - 1}) {
    kvbits::test::save_corpus(
        "gguf", "truncated_at_" + std::to_string(n),
        std::vector<std::byte>(small.bytes.begin(), small.bytes.begin() + static_cast<long>(n)));
  }

  const auto message = [&](std::size_t n) {
    return failure_of([&] { (void)File::parse(std::span(small.bytes.data(), n), "small.gguf"); },
                      "parsing a prefix of " + std::to_string(n) + " bytes")
        .message;
  };
  CHECK_THAT(message(2), Contains("small.gguf: truncated: magic needs 4 bytes at offset 0 but only 2"));
  CHECK_THAT(message(10), Contains("truncated: tensor count needs 8 bytes at offset 8"));
  CHECK_THAT(message(small.writer.info_offset(1) + 3),
             Contains("small.gguf: tensor 1: truncated: tensor name needs 8 bytes"));
  CHECK_THAT(message(small.bytes.size() - 1),
             Contains("small.gguf: tensor 'c': data [offset 64, 34 bytes] extends past end of file"));
}

TEST_CASE("gguf: huge counts and lengths are rejected before any allocation", "[gguf]") {
  const auto small = small_file();
  for (const std::uint64_t count : {kHuge, kMaxU64, std::uint64_t{1} << 40}) {
    INFO("count " << count);
    auto bytes = small.bytes;
    patch_le<std::uint64_t>(bytes, 8, count);
    auto f = parse_failure(count == kHuge ? "huge_tensor_count" : "", bytes);
    CHECK(f.code == Errc::corrupt_data);
    CHECK_THAT(f.message, Contains("tensor count " + std::to_string(count) + " cannot fit"));
    bytes = small.bytes;
    patch_le<std::uint64_t>(bytes, 16, count);
    f = parse_failure(count == kHuge ? "huge_kv_count" : "", bytes);
    CHECK_THAT(f.message, Contains("metadata key-value count " + std::to_string(count) + " cannot fit"));
  }
  auto bytes = small.bytes;
  ByteSink huge_array;
  huge_array.u32(id::kUint32).u64(kHuge);
  auto f = parse_failure("huge_array_count", one_entry("k", id::kArray, huge_array));
  CHECK(f.code == Errc::corrupt_data);
  CHECK_THAT(f.message, Contains("key 'k': array of 9223372036854775808 uint32 elements cannot fit"));
  ByteSink huge_string_array;
  huge_string_array.u32(id::kString).u64(kMaxU64 / 2).str("a");
  f = parse_failure("", one_entry("k", id::kArray, huge_string_array));
  CHECK_THAT(f.message, Contains("string elements cannot fit"));
  ByteSink huge_string;
  huge_string.u64(kHuge);
  f = parse_failure("huge_string_value", one_entry("k", id::kString, huge_string));
  CHECK_THAT(f.message, Contains("key 'k': string length 9223372036854775808 of string value "
                                 "extends past end of file"));
  ByteSink huge_key;
  huge_key.header(3, 0, 1).u64(kMaxU64).u32(id::kUint8).u8(0);
  f = parse_failure("huge_key_length", huge_key.bytes());
  CHECK_THAT(f.message, Contains("metadata entry 0: string length 18446744073709551615 of key"));
  bytes = small.bytes;
  patch_le<std::uint64_t>(bytes, small.writer.info_offset(0), kHuge);
  f = parse_failure("huge_tensor_name_length", bytes);
  CHECK_THAT(f.message, Contains("tensor 0: string length 9223372036854775808 of tensor name"));
  ByteSink huge_inner;  // an inner array claims more elements than exist
  huge_inner.u32(id::kArray).u64(1).u32(id::kInt64).u64(kHuge / 4);
  f = parse_failure("huge_nested_array_count", one_entry("k", id::kArray, huge_inner));
  CHECK_THAT(f.message, Contains("int64 elements cannot fit"));
}

TEST_CASE("gguf: malformed metadata is rejected with a message naming it", "[gguf]") {
  SECTION("bad magic, unsupported versions") {
    auto bytes = small_file().bytes;
    bytes[0] = std::byte{'g'};
    auto f = parse_failure("bad_magic", bytes);
    CHECK(f.code == Errc::corrupt_data);
    CHECK_THAT(f.message, Contains("bad magic \"gGUF\""));
    bytes = small_file().bytes;
    patch_le<std::uint32_t>(bytes, 4, 1);
    f = parse_failure("version_1", bytes);
    CHECK(f.code == Errc::unsupported);
    CHECK_THAT(f.message, Contains("GGUF version 1 is not supported"));
    patch_le<std::uint32_t>(bytes, 4, 4);
    f = parse_failure("", bytes);
    CHECK(f.code == Errc::unsupported);
    CHECK_THAT(f.message, Contains("GGUF version 4 is not supported"));
    patch_le<std::uint32_t>(bytes, 4, 0x03000000U);
    f = parse_failure("version_big_endian", bytes);
    CHECK(f.code == Errc::unsupported);
    CHECK_THAT(f.message, Contains("big-endian"));
  }
  SECTION("value type ids") {
    auto f = parse_failure("bad_value_type", one_entry("k", 13, ByteSink().u8(0)));
    CHECK(f.code == Errc::corrupt_data);
    CHECK_THAT(f.message, Contains("key 'k': unknown value type id 13"));
    f = parse_failure("", one_entry("k", 0xFFFFFFFFU, ByteSink().u8(0)));
    CHECK_THAT(f.message, Contains("unknown value type id 4294967295"));
    f = parse_failure("bad_array_element_type", one_entry("k", id::kArray, ByteSink().u32(99).u64(0)));
    CHECK_THAT(f.message, Contains("key 'k': unknown array element type id 99"));
    f = parse_failure("bad_bool", one_entry("k", id::kBool, ByteSink().u8(2)));
    CHECK_THAT(f.message, Contains("key 'k': bool value 2 is neither 0 nor 1"));
  }
  SECTION("nesting deeper than the limit") {
    ByteSink deep;  // five levels of arrays
    for (int i = 0; i < 4; ++i) deep.u32(id::kArray).u64(1);
    deep.u32(id::kUint8).u64(1).u8(0);
    const auto f = parse_failure("nested_too_deep", one_entry("k", id::kArray, deep));
    CHECK(f.code == Errc::corrupt_data);
    CHECK_THAT(f.message, Contains("key 'k': arrays nested deeper than 4 levels"));
  }
  SECTION("duplicate keys") {
    GgufWriter w;
    w.add_u32("dup", 1).add_string("dup", "again");
    const auto f = parse_failure("duplicate_key", w.build());
    CHECK_THAT(f.message, Contains("key 'dup': duplicate metadata key"));
  }
  SECTION("general.alignment") {
    for (const std::uint32_t bad : {0U, 3U, 48U, 0xFFFFFFFFU}) {
      INFO("alignment " << bad);
      GgufWriter w;
      w.add_u32("general.alignment", bad);
      const auto f = parse_failure(bad == 48 ? "bad_alignment" : "", w.build());
      CHECK(f.code == Errc::corrupt_data);
      CHECK_THAT(f.message, Contains("key 'general.alignment': alignment " + std::to_string(bad) +
                                     " is not a power of two"));
    }
    GgufWriter w;
    w.add_u64("general.alignment", 64);
    const auto f = parse_failure("alignment_wrong_type", w.build());
    CHECK_THAT(f.message, Contains("key 'general.alignment': has type uint64, expected uint32"));
  }
}

TEST_CASE("gguf: malformed tensor infos are rejected with a message naming the tensor", "[gguf]") {
  SECTION("tensor type ids") {
    auto f = parse_failure("tensor_type_q4_0", one_tensor("w", {32}, id::kQ4_0, 0, 18));
    CHECK(f.code == Errc::unsupported);
    CHECK_THAT(f.message, Contains("tensor 'w': tensor type q4_0 (type 2) is not supported"));
    f = parse_failure("tensor_type_retired", one_tensor("w", {32}, 4, 0, 32));
    CHECK(f.code == Errc::corrupt_data);
    CHECK_THAT(f.message, Contains("tensor 'w': unknown tensor type id 4"));
    f = parse_failure("", one_tensor("w", {32}, 1000, 0, 32));
    CHECK_THAT(f.message, Contains("unknown tensor type id 1000"));
  }
  SECTION("dimensions") {
    auto f = parse_failure("n_dims_0", one_tensor("w", {}, id::kF32, 0, 32));
    CHECK(f.code == Errc::corrupt_data);
    CHECK_THAT(f.message, Contains("tensor 'w': has 0 dimensions (must be 1 to 4)"));
    f = parse_failure("n_dims_5", one_tensor("w", {1, 1, 1, 1, 1}, id::kF32, 0, 32));
    CHECK_THAT(f.message, Contains("has 5 dimensions"));
    f = parse_failure("dim_zero", one_tensor("w", {4, 0}, id::kF32, 0, 32));
    CHECK_THAT(f.message, Contains("tensor 'w': dimension 1 is 0"));
    f = parse_failure("dims_overflow", one_tensor("w", {1ULL << 32, 1ULL << 32}, id::kF32, 0, 32));
    CHECK_THAT(f.message, Contains("element count overflows 64 bits at dimension 1"));
    f = parse_failure("", one_tensor("w", {1ULL << 62, 2}, id::kF32, 0, 32));
    CHECK_THAT(f.message, Contains("tensor 'w': data size overflows 64 bits"));
    f = parse_failure("q8_0_partial_block", one_tensor("w", {16, 2}, id::kQ8_0, 0, 34));
    CHECK_THAT(f.message, Contains("q8_0 row length 16 is not a multiple of 32"));
  }
  SECTION("offsets: misaligned, beyond the end, overlapping") {
    const auto small = small_file();
    auto bytes = small.bytes;
    patch_le<std::uint64_t>(bytes, small.writer.offset_field(1), 36);
    auto f = parse_failure("misaligned_offset", bytes);
    CHECK(f.code == Errc::corrupt_data);
    CHECK_THAT(f.message, Contains("tensor 'b': data offset 36 is not a multiple of the alignment 32"));

    bytes = small.bytes;
    patch_le<std::uint64_t>(bytes, small.writer.offset_field(1), 1ULL << 40);
    f = parse_failure("offset_beyond_end", bytes);
    CHECK_THAT(f.message, Contains("tensor 'b': data [offset 1099511627776, 8 bytes] extends past "
                                   "end of file (size " +
                                   std::to_string(bytes.size())));
    bytes = small.bytes;
    patch_le<std::uint64_t>(bytes, small.writer.offset_field(2), kMaxU64 - 31);
    f = parse_failure("offset_wraps", bytes);
    CHECK_THAT(f.message, Contains("tensor 'c': data [offset 18446744073709551584, 34 bytes] "
                                   "extends past end of file"));

    bytes = small.bytes;
    patch_le<std::uint64_t>(bytes, small.writer.offset_field(1), 0);
    f = parse_failure("overlapping_tensors", bytes);
    CHECK_THAT(f.message, Contains("tensors 'a' [offset 0, 32 bytes] and 'b' [offset 0] overlap") ||
                              Contains("tensors 'b' [offset 0, 8 bytes] and 'a' [offset 0] overlap"));
  }
  SECTION("duplicate tensor names") {
    GgufWriter w;
    w.add_tensor("same", {8}, id::kF32, kvbits::test::f32_bytes(std::vector<float>(8)))
        .add_tensor("same", {8}, id::kF32, kvbits::test::f32_bytes(std::vector<float>(8)));
    const auto f = parse_failure("duplicate_tensor", w.build());
    CHECK_THAT(f.message, Contains("tensor 'same': duplicate tensor name"));
  }
}
