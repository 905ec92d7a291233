// SPDX-License-Identifier: MIT
// Codec throughput: encode / decode / dot_rows / axpy_rows per backend and bit
// width at n = 128, G = 32 (asymmetric), on a working set that fits L2 and one
// that spills to DRAM, with a memcpy baseline of the same fp32 bytes.
// bytes/s counts the fp32 data processed (4 bytes per element) for every op,
// so each rate reads directly as a ratio to memcpy.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "kvbits/codec/format.hpp"
#include "kvbits/codec/scalar_backend.hpp"
#include "kvbits/codec/xsimd_backend.hpp"

namespace {

constexpr std::size_t kHeadDim = 128;  // n: one attention head
constexpr std::size_t kGroup = 32;
constexpr std::size_t kL2Bytes = std::size_t{256} << 10;    // fp32 working set that fits L2
constexpr std::size_t kDramBytes = std::size_t{256} << 20;  // fp32 working set that spills to DRAM

struct WorkingSet {
  const char* name;
  std::size_t fp32_bytes;
  std::size_t rows() const { return fp32_bytes / (kHeadDim * sizeof(float)); }
  std::size_t elements() const { return rows() * kHeadDim; }
};

constexpr WorkingSet kSets[] = {{"L2", kL2Bytes}, {"DRAM", kDramBytes}};

// Keys-like data: unit normal with a few 20x outlier channels.
std::vector<float> make_rows(std::size_t elements) {
  std::vector<float> data(elements);
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::size_t i = 0; i < elements; ++i) {
    data[i] = normal(rng) * (i % kHeadDim == 7 || i % kHeadDim == 70 ? 20.0f : 1.0f);
  }
  return data;
}

void report(benchmark::State& state, std::size_t elements) {
  const auto total = static_cast<std::int64_t>(elements) * static_cast<std::int64_t>(state.iterations());
  state.SetBytesProcessed(total * static_cast<std::int64_t>(sizeof(float)));
  state.counters["elements/s"] = benchmark::Counter(static_cast<double>(total), benchmark::Counter::kIsRate);
}

void bench_memcpy(benchmark::State& state, WorkingSet set) {
  const std::vector<float> source = make_rows(set.elements());
  std::vector<float> target(set.elements());
  for (auto _ : state) {
    std::memcpy(target.data(), source.data(), set.fp32_bytes);
    benchmark::DoNotOptimize(target.data());
    benchmark::ClobberMemory();
  }
  report(state, set.elements());
}

enum class Op { encode, decode, dot, axpy };

template <class Backend>
void bench_op(benchmark::State& state, Op op, int bits, WorkingSet set) {
  const kvbits::QuantFormat format{bits, kGroup, kvbits::Scheme::asymmetric};
  const std::size_t rows = set.rows();
  const std::size_t row_bytes = kvbits::packed_size(format, kHeadDim);
  const std::vector<float> source = make_rows(set.elements());
  std::vector<std::uint8_t> packed(rows * row_bytes);
  for (std::size_t r = 0; r < rows; ++r) {
    Backend::encode(format, std::span(source).subspan(r * kHeadDim, kHeadDim),
                    std::span(packed).subspan(r * row_bytes, row_bytes));
  }
  const std::vector<float> query(source.begin(), source.begin() + kHeadDim);
  const std::vector<float> weights(rows, 1.0f / static_cast<float>(rows));
  std::vector<float> decoded(op == Op::decode ? set.elements() : 0);
  std::vector<float> scores(rows);
  std::vector<float> accumulator(kHeadDim);

  for (auto _ : state) {
    switch (op) {
      case Op::encode:
        for (std::size_t r = 0; r < rows; ++r) {
          Backend::encode(format, std::span(source).subspan(r * kHeadDim, kHeadDim),
                          std::span(packed).subspan(r * row_bytes, row_bytes));
        }
        benchmark::DoNotOptimize(packed.data());
        break;
      case Op::decode:
        for (std::size_t r = 0; r < rows; ++r) {
          Backend::decode(format, std::span<const std::uint8_t>(packed).subspan(r * row_bytes, row_bytes),
                          std::span(decoded).subspan(r * kHeadDim, kHeadDim));
        }
        benchmark::DoNotOptimize(decoded.data());
        break;
      case Op::dot:
        Backend::dot_rows(format, query.data(), kHeadDim, packed.data(), row_bytes, rows, scores.data());
        benchmark::DoNotOptimize(scores.data());
        break;
      case Op::axpy:
        Backend::axpy_rows(format, weights.data(), kHeadDim, packed.data(), row_bytes, rows,
                           accumulator.data());
        benchmark::DoNotOptimize(accumulator.data());
        break;
    }
    benchmark::ClobberMemory();
  }
  report(state, set.elements());
}

template <class Backend>
void register_backend() {
  constexpr const char* kOpNames[] = {"encode", "decode", "dot_rows", "axpy_rows"};
  for (const WorkingSet& set : kSets) {
    for (Op op : {Op::encode, Op::decode, Op::dot, Op::axpy}) {
      for (int bits : {2, 3, 4, 8, 16}) {
        const std::string name = std::string(Backend::name()) + "/" + kOpNames[static_cast<int>(op)] + "/" +
                                 std::to_string(bits) + "bit/" + set.name;
        benchmark::RegisterBenchmark(name.c_str(), bench_op<Backend>, op, bits, set)
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (const WorkingSet& set : kSets) {
    benchmark::RegisterBenchmark((std::string("memcpy/") + set.name).c_str(), bench_memcpy, set)
        ->Unit(benchmark::kMicrosecond);
  }
  register_backend<kvbits::XsimdBackend>();
  register_backend<kvbits::ScalarBackend>();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
