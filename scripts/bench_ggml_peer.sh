#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kvbits beside ggml: builds ggml (outside this repository), builds kvbits'
# bench_ggml_peer against it and runs it with the flags of docs/benchmarks.md
# ("A peer: ggml").
#
# Usage:
#   git clone https://github.com/ggml-org/ggml /path/to/ggml   # once; this script never downloads
#   scripts/bench_ggml_peer.sh /path/to/ggml [work dir]
#
# The work dir (default: ./build-ggml-peer) receives ggml's build (ggml-build/), its
# install prefix (ggml-install/), kvbits' build (kvbits/) and the results
# (bench_ggml_peer.json, bench_ggml_peer.txt). Environment:
#   JOBS=<n>        parallel build jobs (default: nproc)
#   MIN_TIME=<s>    --benchmark_min_time per row (default 0.5)
#   FILTER=<regex>  --benchmark_filter (default: all rows)
# Needs cmake, ninja, a C++20 compiler, Google Benchmark, Eigen and xsimd (as
# kvbits' own build). ggml is built with one-thread-friendly options: no OpenMP
# (the harness runs one thread), static libraries, native ISA (GGML_NATIVE).
set -euo pipefail

if [[ $# -lt 1 || ! -f "$1/include/ggml.h" ]]; then
  echo "usage: $0 <ggml checkout> [work dir]" >&2
  echo "  get ggml with: git clone https://github.com/ggml-org/ggml <ggml checkout>" >&2
  exit 2
fi
ggml_source=$(cd "$1" && pwd)
kvbits_source=$(cd "$(dirname "$0")/.." && pwd)
work=${2:-$PWD/build-ggml-peer}
mkdir -p "$work"
work=$(cd "$work" && pwd)
jobs=${JOBS:-$(nproc)}

cmake -S "$ggml_source" -B "$work/ggml-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DGGML_OPENMP=OFF -DBUILD_SHARED_LIBS=OFF \
  -DGGML_BUILD_TESTS=OFF -DGGML_BUILD_EXAMPLES=OFF \
  -DCMAKE_INSTALL_PREFIX="$work/ggml-install"
cmake --build "$work/ggml-build" -j "$jobs"
cmake --install "$work/ggml-build" > /dev/null

cmake -S "$kvbits_source" -B "$work/kvbits" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DKVBITS_WERROR=ON -DKVBITS_GGML_DIR="$work/ggml-install"
cmake --build "$work/kvbits" -j "$jobs" --target bench_ggml_peer

{
  date -u
  uptime
  if git -C "$ggml_source" rev-parse HEAD > /dev/null 2>&1; then
    echo "ggml commit: $(git -C "$ggml_source" rev-parse HEAD)"
  fi
  echo "kvbits commit: $(git -C "$kvbits_source" rev-parse HEAD 2> /dev/null || echo unknown)"
} | tee "$work/bench_ggml_peer.txt"

# Contenders alternate (random interleaving), each row 5 times; the tables use the medians.
"$work/kvbits/bench/peer/bench_ggml_peer" \
  --benchmark_filter="${FILTER:-.}" \
  --benchmark_enable_random_interleaving=true \
  --benchmark_repetitions=5 \
  --benchmark_min_time="${MIN_TIME:-0.5}" \
  --benchmark_report_aggregates_only=true \
  --benchmark_out="$work/bench_ggml_peer.json" --benchmark_out_format=json \
  2>&1 | tee -a "$work/bench_ggml_peer.txt"
uptime | tee -a "$work/bench_ggml_peer.txt"
