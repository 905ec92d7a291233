#!/usr/bin/env bash
# Installs what kvbits needs on Debian 12, all from Debian's own packages.
# Idempotent: packages already present are left as they are.
set -euo pipefail

# chromium and a font render the SVG and HTML reports in the browser tests (tests/browser).
packages=(cmake g++ ninja-build python3 libeigen3-dev libxsimd-dev catch2 libbenchmark-dev
  chromium fonts-dejavu-core)
# CI also cross-builds the codec and cache tests for AArch64 and runs them under
# qemu-user (tests/cross/run_aarch64.sh); the cross g++ brings libc6-dev-arm64-cross.
# doxygen builds the API reference (scripts/docs.sh).
if [[ "${1:-}" == "--ci" ]]; then
  packages+=(clang libclang-rt-14-dev clang-format clang-tidy g++-aarch64-linux-gnu qemu-user doxygen)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=""
if [[ "$(id -u)" -ne 0 ]]; then
  sudo="sudo"
fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
