#!/usr/bin/env bash
# Builds the API reference of include/ with Doxygen (docs/Doxyfile) into OUTPUT_DIR, by default
# build-docs/ (HTML in OUTPUT_DIR/html). Fails on any Doxygen warning: an undocumented public
# name, a @param that names no parameter, a function whose parameters are documented in part.
#   scripts/docs.sh [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
output="${1:-build-docs}"

if ! command -v doxygen >/dev/null; then
  echo "docs.sh: doxygen not found (Debian: apt-get install doxygen)" >&2
  exit 1
fi
mkdir -p "$output"
{
  cat docs/Doxyfile
  echo "OUTPUT_DIRECTORY = \"$output\""
} | doxygen -
echo "API reference: $output/html/index.html"
