# Cross-compiles kvbits' tests for 64-bit ARM Linux with Debian's
# g++-aarch64-linux-gnu; the programs run under qemu-user
# (tests/cross/run_aarch64.sh):
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#     -DKVBITS_NATIVE=OFF ...
# KVBITS_NATIVE must be OFF: -march=native names the build machine.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# ARMv8-A: NEON (Advanced SIMD) and the fp16 conversions are part of the baseline.
set(CMAKE_CXX_FLAGS_INIT "-march=armv8-a")

# Libraries and headers come from the target's tree, programs from the build machine.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# kvbits' dependencies (Eigen, xsimd, Catch2) are header-only, so the build
# machine's packages serve any target. Debian installs xsimd's package files
# under the build machine's multiarch folder. The cross compiler searches
# /usr/include after its own folders, so their headers need no extra flag.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
list(APPEND CMAKE_PREFIX_PATH /usr/lib/${CMAKE_HOST_SYSTEM_PROCESSOR}-linux-gnu/cmake)

# ctest and add_test run the programs through qemu-user with the target's libraries.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
