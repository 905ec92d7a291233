#!/usr/bin/env bash
# clang-tidy with the repository's .clang-tidy over every library header, for each
# instruction set whose code paths differ (the build machine's and, on x86-64, the
# x86-64-v2 baseline): one translation unit includes each header under include/kvbits/,
# and any diagnostic in those headers fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

unit=$(mktemp --suffix=.cpp)
trap 'rm -f "$unit"' EXIT
find include/kvbits -name '*.hpp' | sort | sed 's|^include/\(.*\)$|#include "\1"|' > "$unit"

targets=("-march=native")
if [[ "$(uname -m)" == "x86_64" ]]; then
  targets+=("-march=x86-64-v2")
fi
# The targets run side by side, each into its own log, printed in order once all are done.
logs=()
pids=()
trap 'rm -f "$unit" "${logs[@]}"' EXIT
for target in "${targets[@]}"; do
  log=$(mktemp)
  logs+=("$log")
  {
    echo "clang-tidy: $(wc -l < "$unit") headers of include/kvbits, $target"
    clang-tidy --quiet --config-file=.clang-tidy --header-filter='include/kvbits/.*' --warnings-as-errors='*' \
      "$unit" -- -std=c++20 "$target" -Iinclude -isystem /usr/include/eigen3
  } > "$log" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || status=1
  cat "${logs[$i]}"
done
exit "$status"
