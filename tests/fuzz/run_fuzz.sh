#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and fuzzes the GGUF reader and the
# cache-file loader for the given time each, then the tokenizer and the
# controller weight-file loader for half of it each, two fuzzers at a time.
# Usage: tests/fuzz/run_fuzz.sh <build-dir> [seconds=60]
# The committed corpus is copied to a temporary directory first, so new inputs
# never land in the repository; crashes are written to that directory and the
# script exits non-zero.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 <build-dir> [seconds=60]" >&2
  exit 2
fi
build_dir=$1
seconds=${2:-60}
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
corpus_dir=$source_dir/tests/fuzz/corpus/gguf

cmake -S "$source_dir" -B "$build_dir" -G Ninja \
  -DCMAKE_CXX_COMPILER="${CXX_FUZZ:-clang++}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKVBITS_FUZZ=ON -DKVBITS_BUILD_TESTS=OFF -DKVBITS_BUILD_BENCHMARKS=OFF \
  -DKVBITS_BUILD_EXAMPLES=OFF
cmake --build "$build_dir" --target fuzz_gguf fuzz_tokenizer fuzz_controller fuzz_cache_file -j"${FUZZ_JOBS:-2}"

work_dir=$(mktemp -d "${TMPDIR:-/tmp}/kvbits_fuzz_gguf.XXXXXX")
echo "fuzz work directory: $work_dir"
mkdir -p "$work_dir/corpus" "$work_dir/artifacts"
cp "$corpus_dir"/* "$work_dir/corpus/"

# Two fuzzers at a time, one per core of a CI machine: the GGUF reader beside the
# cache-file loader, then the tokenizer beside the controller weight-file loader.
# Each writes its log to the work directory; a failing one's log is printed.
fuzz() {  # fuzz <name> <corpus> <seconds> <max_len>
  "$build_dir/tests/$1" "$2" -max_total_time="$3" -max_len="$4" -rss_limit_mb=1024 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work_dir/artifacts/" > "$work_dir/$1.log" 2>&1
}
failed=0
wait_for() {  # wait_for <pid> <name>
  if wait "$1"; then
    tail -n 12 "$work_dir/$2.log"
  else
    cat "$work_dir/$2.log"
    echo "$2 failed: see the crash input in $work_dir/artifacts" >&2
    failed=1
  fi
}

fuzz_pair() {  # fuzz_pair <name> <corpus> <seconds> <max_len> <name> <corpus> <seconds> <max_len>
  fuzz "$1" "$2" "$3" "$4" &
  local first=$!
  fuzz "$5" "$6" "$7" "$8" &
  local second=$!
  wait_for "$first" "$1"
  wait_for "$second" "$5"
}

# Seeds: the committed GGUF corpus (above); for the cache files and the controller weight
# files, the files of tests/test_cache_file.cpp and tests/test_controller.cpp, valid ones,
# truncated and flipped ones. The tokenizer needs none: any byte string is a valid input.
mkdir -p "$work_dir/cache_file_corpus" "$work_dir/tokenizer_corpus" "$work_dir/controller_corpus"
cp "$source_dir"/tests/fuzz/corpus/cache_file/* "$work_dir/cache_file_corpus/"
cp "$source_dir"/tests/fuzz/corpus/controller/* "$work_dir/controller_corpus/"

# -rss_limit_mb keeps a runaway allocation from passing unnoticed; inputs up
# to 64 KiB let the fuzzer grow GGUF files with several tensors.
half=$(( (seconds + 1) / 2 ))
fuzz_pair fuzz_gguf "$work_dir/corpus" "$seconds" 65536 fuzz_cache_file "$work_dir/cache_file_corpus" "$seconds" 16384
fuzz_pair fuzz_tokenizer "$work_dir/tokenizer_corpus" "$half" 4096 fuzz_controller "$work_dir/controller_corpus" "$half" 4096

if [[ $failed -ne 0 ]]; then
  exit 1
fi
echo "fuzzing finished cleanly; new inputs are in $work_dir/corpus, $work_dir/tokenizer_corpus," \
  "$work_dir/controller_corpus and $work_dir/cache_file_corpus"
