#!/usr/bin/env bash
# Builds and runs tests/consumer in one of the three ways a project takes kvbits, from a clean
# folder, and checks that the programs print their round trip and that the package was found
# where it should be:
#   install       cmake --install KVBITS_BUILD into WORK_DIR/prefix, find_package from there
#   build-tree    find_package from KVBITS_BUILD itself (its export() and config files)
#   subdirectory  add_subdirectory of this source tree, which must neither add nor install anything
#                 but the library target
# CMake's own CMAKE_GENERATOR and CXX environment variables pick the generator and compiler,
# and CMAKE the cmake program (default: the one on PATH).
#   tests/consumer/run_consumer.sh STYLE WORK_DIR [KVBITS_BUILD]
set -euo pipefail
if (($# < 2)); then
  echo "usage: run_consumer.sh install|build-tree|subdirectory WORK_DIR [KVBITS_BUILD]" >&2
  exit 2
fi
style=$1
work=$2
kvbits_build=${3:-}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
cmake=${CMAKE:-cmake}
fail() {
  echo "run_consumer ($style): FAIL: $*" >&2
  exit 1
}

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
options=(-DKVBITS_CONSUMER_STYLE="$style")
case "$style" in
  install)
    [[ -n "$kvbits_build" ]] || fail "needs KVBITS_BUILD"
    "$cmake" --install "$kvbits_build" --prefix "$work/prefix" >/dev/null
    options+=(-DCMAKE_PREFIX_PATH="$work/prefix")
    expected_dir="$work/prefix/"
    ;;
  build-tree)
    [[ -n "$kvbits_build" ]] || fail "needs KVBITS_BUILD"
    kvbits_build=$(cd "$kvbits_build" && pwd)
    options+=(-Dkvbits_DIR="$kvbits_build")
    expected_dir="$kvbits_build/"
    ;;
  subdirectory)
    options+=(-DKVBITS_SOURCE_DIR="$source_dir")
    expected_dir=""
    ;;
  *)
    fail "unknown style (install, build-tree or subdirectory)"
    ;;
esac

configured=$("$cmake" -S "$source_dir/tests/consumer" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  "${options[@]}")
if [[ -n "$expected_dir" ]]; then
  found=$(sed -n 's/^-- kvbits .* from //p' <<<"$configured")
  [[ "$found" == "$expected_dir"* ]] || fail "find_package read '$found', not a file under '$expected_dir'"
  echo "find_package read $found"
fi
"$cmake" --build "$work/build" -j 1

programs=("$work/build/kvbits_consumer")
if [[ -x "$work/build/kvbits_consumer_native" ]]; then
  programs+=("$work/build/kvbits_consumer_native")
fi
for program in "${programs[@]}"; do
  output=$("$program")
  echo "$output"
  [[ "$output" =~ ^kvbits\ [0-9]+\.[0-9]+\.[0-9]+\ \($style\):\ .*\ backend\ round\ trip\ ok$ ]] ||
    fail "unexpected output from $program"
done

if [[ "$style" == "subdirectory" ]]; then
  # KVBITS_INSTALL is off in a subproject: installing the parent installs nothing of kvbits.
  "$cmake" --install "$work/build" --prefix "$work/prefix" >/dev/null
  if [[ -e "$work/prefix" ]]; then
    fail "installing the parent project installed $(find "$work/prefix" -type f | head -n 3 | tr '\n' ' ')"
  fi
  echo "install: nothing installed"
fi
echo "run_consumer ($style): ok"
