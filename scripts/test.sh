#!/usr/bin/env bash
# Installs the dependencies, builds every kvbits target with warnings as errors
# and runs the whole test suite. Needs ../shared (or KVBITS_SHARED_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Release -DKVBITS_WERROR=ON
cmake --build build-test -j "$(nproc)"
ctest --test-dir build-test --output-on-failure -j "$(nproc)"
