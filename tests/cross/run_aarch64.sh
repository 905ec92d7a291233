#!/usr/bin/env bash
# Cross-compiles the codec and cache tests for AArch64 (NEON) with Debian's
# g++-aarch64-linux-gnu and runs them under qemu-user: the NEON kernels must
# give the scalar reference's bytes and agree with it within the tests'
# tolerances, as the x86 kernels do. Correctness only: emulated timings say
# nothing about ARM hardware.
#   tests/cross/run_aarch64.sh [build-dir]    (default build-aarch64)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build-aarch64}"
sysroot=/usr/aarch64-linux-gnu
tests=(test_codec test_cache test_cache_adaptive)

for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  if ! command -v "$tool" >/dev/null; then
    echo "run_aarch64: $tool not found (Debian: apt-get install g++-aarch64-linux-gnu qemu-user)" >&2
    exit 1
  fi
done

start=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
  -DCMAKE_BUILD_TYPE=Release -DKVBITS_NATIVE=OFF -DKVBITS_WERROR=ON \
  -DKVBITS_BUILD_BENCHMARKS=OFF -DKVBITS_BUILD_EXAMPLES=OFF
cmake --build "$build" -j "$(nproc)" --target "${tests[@]}"
built=$(date +%s)

# The backend test prints XsimdBackend::name(); anything but NEON means the
# tests compared the scalar reference with itself.
name=$(qemu-aarch64 -L "$sysroot" "$build/tests/test_codec" \
  "backends satisfy the Backend concept and name themselves" --success |
  sed -n 's/.*xsimd backend: \(xsimd-[^ ]*\).*/\1/p' | head -n 1)
echo "xsimd backend under test: ${name:-unknown}"
if [[ "$name" != "xsimd-arm64+neon" ]]; then
  echo "run_aarch64: expected the NEON kernels (xsimd-arm64+neon), got '${name:-nothing}'" >&2
  exit 1
fi

# One emulator per core: the tests run side by side, each into its own log, printed in order.
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
status=0
running=()
declare -A pids
finish_oldest() {
  local test=${running[0]}
  running=("${running[@]:1}")
  wait "${pids[$test]}" || { status=1; echo "run_aarch64: $test failed" >&2; }
  echo "--- $test (qemu-aarch64)"
  cat "$logs/$test.log"
}
for test in "${tests[@]}"; do
  if ((${#running[@]} >= $(nproc))); then finish_oldest; fi
  qemu-aarch64 -L "$sysroot" "$build/tests/$test" > "$logs/$test.log" 2>&1 &
  pids[$test]=$!
  running+=("$test")
done
while ((${#running[@]} > 0)); do finish_oldest; done
echo "aarch64: build $((built - start))s, qemu runs $(($(date +%s) - built))s"
exit "$status"
