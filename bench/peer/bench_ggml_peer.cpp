// SPDX-License-Identifier: MIT
// kvbits beside ggml, in one process, on the same data, single thread.
//
// Decode attention: one query token, head_dim 128, N = 4096 and 32768 context
// tokens, 1 query head over 1 KV head and 8 query heads over 2 KV heads (GQA;
// ggml's flash_attn_ext broadcasts KV heads as kvbits does, g = h / (H / G)).
// kvbits: QuantizedKVCache::attend with static 4-, 8-, 16- and 32-bit caches.
// ggml: ggml_flash_attn_ext with K/V stored as f16, q8_0 and q4_0, its graph and
// work buffer built once, only ggml_graph_compute timed (one-thread threadpool).
// Every row times its contender and ggml's f16 flash attention alternately in
// the same loop, so x_ggml_f16 is a paired ratio that other jobs on a shared
// machine move far less than either time.
//
// Encode: kvbits' XsimdBackend::encode (checked) and encode_unchecked of
// 128-element rows at 4 and 8 bits, groups 32, 64 and 128, both schemes,
// against ggml's q8_0 and q4_0 row quantizers (the CPU backend's from_float,
// which llama.cpp's KV cache writes use, and ggml_quantize_chunk's reference
// ones), each row paired with ggml's q8_0 from_float over the same rows
// (x_q8_0 = q8_0 time / time: above 1 is faster than q8_0).
//
// Before anything is timed, every attention contender's output is compared
// with an FP64 reference over the same fp32 data; the program aborts when one
// is off by more than its width's tolerance.
#include <benchmark/benchmark.h>

#include <ggml-cpu.h>
#include <ggml.h>
#include "../bench_support.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "kvbits/kvbits.hpp"

namespace {

// ggml with one thread computes in the calling thread, so thread CPU time counts it.
using kvbits::bench::thread_seconds;

constexpr std::size_t kHeadDim = 128;
constexpr unsigned kSeed = 1;

// Relative L2 error ||out - ref|| / ||ref|| allowed against the FP64 reference, per storage
// width. Measured by this harness (unit-normal data, all four shapes): kvbits 32-bit 3e-7..8e-7,
// 16-bit 2.5e-4..3.3e-4, 8-bit 0.008-0.009, 4-bit 0.12-0.15; ggml q8_0 0.008-0.009, q4_0
// 0.10-0.12. The tolerances leave about 2x room or more.
constexpr double kMaxErrFp32 = 1e-5;
constexpr double kMaxErrFp16 = 2e-3;
constexpr double kMaxErr8Bit = 2e-2;
constexpr double kMaxErr4Bit = 0.25;
// ggml's CPU flash attention with an f16 V accumulates softmax(QK) V in an FP16 vector
// (VKQ16, ggml_vec_mad_f16) and rounds Q to f16, so its error grows with the context:
// measured 0.009-0.010 at N = 4096 and 0.023-0.025 at N = 32768.
constexpr double kMaxErrGgmlF16 = 0.05;

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "bench_ggml_peer: %s\n", message.c_str());
  std::abort();
}

// ---------------------------------------------------------------------------------------------
// Attention
// ---------------------------------------------------------------------------------------------

struct Shape {
  std::size_t tokens;    // N, context tokens
  std::size_t heads;     // H, query heads
  std::size_t kv_heads;  // G, key/value heads
  std::string name() const {
    // Appended piece by piece: GCC 12's -Wrestrict misfires on "literal" + std::string&&.
    std::string name = "N";
    name.append(std::to_string(tokens)).append("/H").append(std::to_string(heads));
    return name.append("_G").append(std::to_string(kv_heads));
  }
};

// One shape's data, generated once from kSeed: unit-normal K, V and q.
struct AttentionData {
  Shape shape;
  std::vector<float> keys;       // [kv_heads][tokens][head_dim] (ggml's K layout)
  std::vector<float> values;     // [kv_heads][tokens][head_dim]
  std::vector<float> query;      // [heads][head_dim]
  std::vector<float> reference;  // [heads][head_dim], FP64 attention rounded to float

  explicit AttentionData(Shape s) : shape(s) {
    std::mt19937 rng(kSeed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const std::size_t kv = s.kv_heads * s.tokens * kHeadDim;
    keys.resize(kv);
    values.resize(kv);
    query.resize(s.heads * kHeadDim);
    for (float& x : keys) x = normal(rng);
    for (float& x : values) x = normal(rng);
    for (float& x : query) x = normal(rng);
    reference = reference_attention();
  }

  const float* key(std::size_t g, std::size_t t) const {
    return keys.data() + (g * shape.tokens + t) * kHeadDim;
  }
  const float* value(std::size_t g, std::size_t t) const {
    return values.data() + (g * shape.tokens + t) * kHeadDim;
  }

  std::vector<float> reference_attention() const {
    std::vector<float> out(shape.heads * kHeadDim);
    std::vector<double> scores(shape.tokens);
    const double scale = 1.0 / std::sqrt(static_cast<double>(kHeadDim));
    for (std::size_t h = 0; h < shape.heads; ++h) {
      const std::size_t g = h / (shape.heads / shape.kv_heads);
      const float* q = query.data() + h * kHeadDim;
      double max = -INFINITY;
      for (std::size_t t = 0; t < shape.tokens; ++t) {
        double dot = 0.0;
        for (std::size_t i = 0; i < kHeadDim; ++i) dot += double{q[i]} * double{key(g, t)[i]};
        scores[t] = dot * scale;
        max = std::max(max, scores[t]);
      }
      double sum = 0.0;
      std::vector<double> acc(kHeadDim, 0.0);
      for (std::size_t t = 0; t < shape.tokens; ++t) {
        const double p = std::exp(scores[t] - max);
        sum += p;
        for (std::size_t i = 0; i < kHeadDim; ++i) acc[i] += p * double{value(g, t)[i]};
      }
      for (std::size_t i = 0; i < kHeadDim; ++i) out[h * kHeadDim + i] = static_cast<float>(acc[i] / sum);
    }
    return out;
  }
};

// Shapes are generated on first use and kept: with interleaved repetitions every
// row runs several times, and generating 32k-token data dominates setup.
const AttentionData& data_of(const Shape& shape) {
  static std::map<std::string, std::unique_ptr<AttentionData>> table;
  auto& slot = table[shape.name()];
  if (!slot) slot = std::make_unique<AttentionData>(shape);
  return *slot;
}

// A contender: one decode-attention call writing out [heads][head_dim], and the K+V bytes it stores.
struct Attention {
  std::function<void(float* out)> run;
  std::size_t kv_bytes = 0;
};

// kvbits: a static-width QuantizedKVCache holding the shape's tokens (default
// codec: asymmetric, one group per head vector).
Attention make_kvbits(const AttentionData& data, int bits) {
  const Shape& s = data.shape;
  kvbits::CacheOptions options;
  options.kv_heads = s.kv_heads;
  options.head_dim = kHeadDim;
  options.capacity = s.tokens;
  using Cache = kvbits::QuantizedKVCache<kvbits::StaticPolicy, kvbits::DefaultBackend>;
  auto cache = std::make_shared<Cache>(options, kvbits::StaticPolicy{{bits, bits}});
  std::vector<float> k(s.kv_heads * kHeadDim), v(s.kv_heads * kHeadDim);
  for (std::size_t t = 0; t < s.tokens; ++t) {
    for (std::size_t g = 0; g < s.kv_heads; ++g) {
      std::copy_n(data.key(g, t), kHeadDim, k.begin() + static_cast<std::ptrdiff_t>(g * kHeadDim));
      std::copy_n(data.value(g, t), kHeadDim, v.begin() + static_cast<std::ptrdiff_t>(g * kHeadDim));
    }
    cache->append(0, k, v, kvbits::TokenInfo{0, t, -1, {}});
  }
  const auto memory = cache->memory().total;
  Attention a;
  a.kv_bytes = memory.code_bytes + memory.metadata_bytes + memory.residual_bytes;
  const std::size_t out_size = s.heads * kHeadDim;
  a.run = [cache, q = std::span<const float>(data.query), out_size](float* out) {
    cache->attend(0, q, std::span<float>(out, out_size));
  };
  return a;
}

// ggml: ggml_flash_attn_ext over K/V stored as `type`, graph, plan and work buffer built once.
struct GgmlAttention {
  ggml_context* context = nullptr;
  ggml_cgraph* graph = nullptr;
  ggml_tensor* result = nullptr;
  ggml_threadpool* threadpool = nullptr;
  ggml_cplan plan{};
  std::vector<std::uint8_t> work;

  GgmlAttention(const AttentionData& data, ggml_type type) {
    const Shape& s = data.shape;
    const auto d = static_cast<std::int64_t>(kHeadDim);
    const auto n = static_cast<std::int64_t>(s.tokens);
    const auto kv_rows = static_cast<std::int64_t>(s.kv_heads) * n;
    const std::size_t kv_tensor = ggml_row_size(type, d) * static_cast<std::size_t>(kv_rows);
    const std::size_t f32_bytes = s.heads * kHeadDim * sizeof(float);
    ggml_init_params params{};
    params.mem_size =
        2 * kv_tensor + 2 * f32_bytes + 8 * ggml_tensor_overhead() + ggml_graph_overhead() + 4096;
    params.no_alloc = false;
    context = ggml_init(params);
    if (context == nullptr) fail("ggml_init failed");
    ggml_tensor* q = ggml_new_tensor_3d(context, GGML_TYPE_F32, d, 1, static_cast<std::int64_t>(s.heads));
    ggml_tensor* k = ggml_new_tensor_3d(context, type, d, n, static_cast<std::int64_t>(s.kv_heads));
    ggml_tensor* v = ggml_new_tensor_3d(context, type, d, n, static_cast<std::int64_t>(s.kv_heads));
    std::copy(data.query.begin(), data.query.end(), static_cast<float*>(q->data));
    store(type, data.keys, k->data, kv_rows, d);
    store(type, data.values, v->data, kv_rows, d);
    result = ggml_flash_attn_ext(context, q, k, v, nullptr, 1.0f / std::sqrt(static_cast<float>(kHeadDim)),
                                 0.0f, 0.0f);
    graph = ggml_new_graph(context);
    ggml_build_forward_expand(graph, result);
    ggml_threadpool_params tp = ggml_threadpool_params_default(1);
    threadpool = ggml_threadpool_new(&tp);
    plan = ggml_graph_plan(graph, 1, threadpool);
    work.resize(plan.work_size);
    plan.work_data = work.data();
  }
  GgmlAttention(const GgmlAttention&) = delete;
  GgmlAttention& operator=(const GgmlAttention&) = delete;
  ~GgmlAttention() {
    ggml_threadpool_free(threadpool);
    ggml_free(context);
  }

  static void store(ggml_type type, const std::vector<float>& source, void* target, std::int64_t rows,
                    std::int64_t d) {
    if (type == GGML_TYPE_F16) {
      ggml_fp32_to_fp16_row(source.data(), static_cast<ggml_fp16_t*>(target), rows * d);
    } else if (type == GGML_TYPE_F32) {
      std::copy(source.begin(), source.end(), static_cast<float*>(target));
    } else {
      ggml_quantize_chunk(type, source.data(), target, 0, rows, d, nullptr);
    }
  }

  void run(float* out) {
    if (ggml_graph_compute(graph, &plan) != GGML_STATUS_SUCCESS) fail("ggml_graph_compute failed");
    // res is [head_dim][heads][1] (permuted): contiguous [heads][head_dim], as kvbits' out.
    const auto* r = static_cast<const float*>(result->data);
    std::copy(r, r + ggml_nelements(result), out);
  }
};

Attention make_ggml(const AttentionData& data, ggml_type type) {
  auto peer = std::make_shared<GgmlAttention>(data, type);
  Attention a;
  a.kv_bytes = 2 * ggml_nbytes(peer->result->src[1]);
  a.run = [peer](float* out) { peer->run(out); };
  return a;
}

struct Contender {
  const char* name;
  double max_error;
  std::function<Attention(const AttentionData&)> make;
};

const std::vector<Contender>& contenders() {
  static const std::vector<Contender> list = {
      {"ggml_f16", kMaxErrGgmlF16, [](const AttentionData& d) { return make_ggml(d, GGML_TYPE_F16); }},
      {"ggml_q8_0", kMaxErr8Bit, [](const AttentionData& d) { return make_ggml(d, GGML_TYPE_Q8_0); }},
      {"ggml_q4_0", kMaxErr4Bit, [](const AttentionData& d) { return make_ggml(d, GGML_TYPE_Q4_0); }},
      {"kvbits_static32", kMaxErrFp32, [](const AttentionData& d) { return make_kvbits(d, 32); }},
      {"kvbits_static16", kMaxErrFp16, [](const AttentionData& d) { return make_kvbits(d, 16); }},
      {"kvbits_static8", kMaxErr8Bit, [](const AttentionData& d) { return make_kvbits(d, 8); }},
      {"kvbits_static4", kMaxErr4Bit, [](const AttentionData& d) { return make_kvbits(d, 4); }},
  };
  return list;
}

// Built contenders, kept across repetitions (key: contender/shape).
Attention& attention_of(const Contender& contender, const Shape& shape) {
  static std::map<std::string, Attention> table;
  const std::string key = std::string(contender.name) + "/" + shape.name();
  auto it = table.find(key);
  if (it == table.end()) it = table.emplace(key, contender.make(data_of(shape))).first;
  return it->second;
}

double relative_error(const std::vector<float>& out, const std::vector<float>& reference) {
  double diff = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const double e = double{out[i]} - double{reference[i]};
    diff += e * e;
    norm += double{reference[i]} * double{reference[i]};
  }
  return std::sqrt(diff / norm);
}

// Every contender against the FP64 reference, before any timing; prints every
// error, then aborts if any is over its tolerance.
void check_attention(const std::vector<Shape>& shapes) {
  std::string failures;
  for (const Shape& shape : shapes) {
    const AttentionData& data = data_of(shape);
    for (const Contender& contender : contenders()) {
      std::vector<float> out(shape.heads * kHeadDim, NAN);
      attention_of(contender, shape).run(out.data());
      const double error = relative_error(out, data.reference);
      std::fprintf(stderr, "check %-16s %-14s relative L2 error %.3g (tolerance %.3g)\n", contender.name,
                   shape.name().c_str(), error, contender.max_error);
      if (!(error <= contender.max_error)) {
        failures += "\n  " + std::string(contender.name) + " on " + shape.name() +
                    ": output differs from the FP64 reference by " + std::to_string(error) + " > " +
                    std::to_string(contender.max_error);
      }
    }
  }
  if (!failures.empty()) fail("wrong attention outputs, nothing timed:" + failures);
}

// One contender paired with ggml's f16 flash attention on the same shape, alternating per iteration.
void bench_attention(benchmark::State& state, const Contender* contender, Shape shape) {
  Attention& mine = attention_of(*contender, shape);
  Attention& base = attention_of(contenders().front(), shape);
  std::vector<float> out(shape.heads * kHeadDim);
  mine.run(out.data());  // warm: scratch growth, page-in
  base.run(out.data());
  double mine_seconds = 0.0, base_seconds = 0.0;
  for (auto _ : state) {
    const double start = thread_seconds();
    base.run(out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    const double middle = thread_seconds();
    mine.run(out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    base_seconds += middle - start;
    mine_seconds += thread_seconds() - middle;
  }
  const double calls = static_cast<double>(state.iterations());
  const double per_token_head = calls * static_cast<double>(shape.tokens * shape.heads);
  state.counters["ns_tok_head"] = mine_seconds * 1e9 / per_token_head;
  state.counters["f16_ns_tok_head"] = base_seconds * 1e9 / per_token_head;
  state.counters["x_ggml_f16"] = mine_seconds / base_seconds;
  state.counters["bits_elem"] = 8.0 * static_cast<double>(mine.kv_bytes) /
                                static_cast<double>(2 * shape.kv_heads * shape.tokens * kHeadDim);
}

// ---------------------------------------------------------------------------------------------
// Encode
// ---------------------------------------------------------------------------------------------

constexpr std::size_t kEncodeRows = 512;  // 256 KiB of fp32 rows: fits L2, as bench_codec's "L2" set

// bench_codec's keys-like data: unit normal with two 20x outlier channels.
const std::vector<float>& encode_rows() {
  static const std::vector<float> data = [] {
    std::vector<float> x(kEncodeRows * kHeadDim);
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = normal(rng) * (i % kHeadDim == 7 || i % kHeadDim == 70 ? 20.0f : 1.0f);
    }
    return x;
  }();
  return data;
}

// One pass over encode_rows(), row by row (128 elements per call, as a cache append does).
using EncodePass = std::function<void()>;

// checked: the public XsimdBackend::encode (format, length and NaN/Inf checks per row);
// unchecked: encode_unchecked, the kernel alone, with the contract of ggml's from_float
// (the cache takes this path after checking a token's vectors once).
EncodePass kvbits_encoder(int bits, std::size_t group, kvbits::Scheme scheme, bool checked) {
  const kvbits::QuantFormat format{bits, group, scheme};
  const std::size_t row_bytes = kvbits::packed_size(format, kHeadDim);
  auto packed = std::make_shared<std::vector<std::uint8_t>>(kEncodeRows * row_bytes);
  return [format, row_bytes, packed, checked] {
    const std::span<const float> source(encode_rows());
    for (std::size_t r = 0; r < kEncodeRows; ++r) {
      if (checked) {
        kvbits::XsimdBackend::encode(format, source.subspan(r * kHeadDim, kHeadDim),
                                     std::span(*packed).subspan(r * row_bytes, row_bytes));
      } else {
        kvbits::XsimdBackend::encode_unchecked(format, source.data() + r * kHeadDim, kHeadDim,
                                               packed->data() + r * row_bytes);
      }
    }
    benchmark::DoNotOptimize(packed->data());
  };
}

// ggml's CPU from_float (SIMD where the CPU backend has it: q8_0 on x86) or the reference quantizer.
EncodePass ggml_encoder(ggml_type type, bool reference) {
  const std::size_t row_bytes = ggml_row_size(type, static_cast<std::int64_t>(kHeadDim));
  auto packed = std::make_shared<std::vector<std::uint8_t>>(kEncodeRows * row_bytes);
  const ggml_from_float_t from_float = ggml_get_type_traits_cpu(type)->from_float;
  return [type, reference, row_bytes, packed, from_float] {
    const float* source = encode_rows().data();
    for (std::size_t r = 0; r < kEncodeRows; ++r) {
      if (reference) {
        ggml_quantize_chunk(type, source + r * kHeadDim, packed->data() + r * row_bytes, 0, 1,
                            static_cast<std::int64_t>(kHeadDim), nullptr);
      } else {
        from_float(source + r * kHeadDim, packed->data() + r * row_bytes,
                   static_cast<std::int64_t>(kHeadDim));
      }
    }
    benchmark::DoNotOptimize(packed->data());
  };
}

// A contender's encode pass paired with ggml's q8_0 from_float over the same rows.
void bench_encode(benchmark::State& state, EncodePass mine) {
  const EncodePass base = ggml_encoder(GGML_TYPE_Q8_0, false);
  mine();
  base();
  double mine_seconds = 0.0, base_seconds = 0.0;
  for (auto _ : state) {
    const double start = thread_seconds();
    base();
    benchmark::ClobberMemory();
    const double middle = thread_seconds();
    mine();
    benchmark::ClobberMemory();
    base_seconds += middle - start;
    mine_seconds += thread_seconds() - middle;
  }
  const double elements =
      static_cast<double>(state.iterations()) * static_cast<double>(kEncodeRows * kHeadDim);
  state.counters["G_elem_s"] = elements / mine_seconds * 1e-9;
  state.counters["q8_0_G_elem_s"] = elements / base_seconds * 1e-9;
  state.counters["x_q8_0"] = base_seconds / mine_seconds;  // > 1: faster than ggml's q8_0
}

void register_all(const std::vector<Shape>& shapes) {
  for (const Shape& shape : shapes) {
    for (const Contender& contender : contenders()) {
      benchmark::RegisterBenchmark(("attention/" + std::string(contender.name) + "/" + shape.name()).c_str(),
                                   bench_attention, &contender, shape)
          ->Unit(benchmark::kMillisecond);
    }
  }
  for (int bits : {4, 8}) {
    for (std::size_t group : {32u, 64u, 128u}) {
      for (kvbits::Scheme scheme : {kvbits::Scheme::asymmetric, kvbits::Scheme::symmetric}) {
        for (bool checked : {true, false}) {
          const std::string name = "encode/kvbits_" + std::to_string(bits) + "bit_g" + std::to_string(group) +
                                   (scheme == kvbits::Scheme::asymmetric ? "_asym" : "_sym") +
                                   (checked ? "" : "_unchecked");
          benchmark::RegisterBenchmark(name.c_str(), bench_encode,
                                       kvbits_encoder(bits, group, scheme, checked))
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
  const std::pair<const char*, ggml_type> types[] = {{"q8_0", GGML_TYPE_Q8_0}, {"q4_0", GGML_TYPE_Q4_0}};
  for (const auto& [name, type] : types) {
    benchmark::RegisterBenchmark(("encode/ggml_" + std::string(name) + "_from_float").c_str(), bench_encode,
                                 ggml_encoder(type, false))
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("encode/ggml_" + std::string(name) + "_quantize_chunk").c_str(),
                                 bench_encode, ggml_encoder(type, true))
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  ggml_cpu_init();
  const std::vector<Shape> shapes = {{4096, 1, 1}, {4096, 8, 2}, {32768, 1, 1}, {32768, 8, 2}};
  check_attention(shapes);
  register_all(shapes);
  benchmark::AddCustomContext("kvbits_backend", std::string(kvbits::DefaultBackend::name()));
  benchmark::AddCustomContext("ggml_version", ggml_version());
  benchmark::AddCustomContext("ggml_commit", ggml_commit());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
