#!/usr/bin/env bash
# Installs the dependencies, builds kvbits in Release and runs the demo: a real
# LLaMA-architecture model generating text on top of a mixed-precision KV cache.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKVBITS_BUILD_TESTS=OFF
cmake --build build --target kvbits-generate
./build/examples/kvbits-generate --prompt "Once upon a time" --tokens 200 --policy "${KVBITS_DEMO_POLICY:-static:8,4}" "$@"
