#!/usr/bin/env bash
# Compiles one source file as a consumer of kvbits::kvbits would and checks what the compiler
# says. A file with `// expect: TEXT` lines (and `// expect-ID: TEXT` lines for one compiler,
# ID being CMake's compiler id: GNU, Clang) must fail to compile with diagnostics that contain
# every such TEXT; a file without any must compile.
#   check_compile.sh COMPILER COMPILER_ID FLAGS_FILE SOURCE
set -euo pipefail
if (($# != 4)); then
  echo "usage: check_compile.sh COMPILER COMPILER_ID FLAGS_FILE SOURCE" >&2
  exit 2
fi
compiler=$1
id=$2
flags=$3
source=$4

mapfile -t expected < <(sed -n -E "s@^// expect(-$id)?: @@p" "$source")
status=0
# LC_ALL=C: GCC quotes names with plain apostrophes, as the expectations spell them.
diagnostics=$(LC_ALL=C "$compiler" "@$flags" -fsyntax-only "$source" 2>&1) || status=$?

if ((${#expected[@]} == 0)); then
  if ((status != 0)); then
    printf '%s\n' "$diagnostics"
    echo "check_compile: FAIL: $source should compile" >&2
    exit 1
  fi
  echo "check_compile: $source compiles"
  exit 0
fi

if ((status == 0)); then
  echo "check_compile: FAIL: $source compiled; expected an error" >&2
  exit 1
fi
missing=0
for text in "${expected[@]}"; do
  if line=$(grep -F -m 1 -- "$text" <<<"$diagnostics"); then
    echo "found: $line"
  else
    echo "check_compile: FAIL: no diagnostic contains: $text" >&2
    missing=1
  fi
done
if ((missing)); then
  echo "--- the compiler said:"
  printf '%s\n' "$diagnostics"
  exit 1
fi
