#!/usr/bin/env bash
# Compiler launcher for the codec tests of an instruction set the build machine lacks:
# runs the compile command with -fsyntax-only (every template the file uses is instantiated
# and the front end's warnings are errors, but no code is generated: nothing here could run
# it) and then touches the object file the command names, so the build is up to date.
set -euo pipefail
out=""
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; ++i)); do
  if [[ ${args[i]} == -o ]]; then
    out=${args[i + 1]}
  fi
done
if [[ -z $out ]]; then
  echo "syntax_only.sh: the compile command names no object file (-o)" >&2
  exit 2
fi
"$@" -fsyntax-only
touch "$out"
