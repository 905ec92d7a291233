// SPDX-License-Identifier: MIT
#pragma once

// The single source of the version: CMakeLists.txt parses these three lines.
#define KVBITS_VERSION_MAJOR 0
#define KVBITS_VERSION_MINOR 1
#define KVBITS_VERSION_PATCH 0

#define KVBITS_STRINGIFY_IMPL(x) #x
#define KVBITS_STRINGIFY(x) KVBITS_STRINGIFY_IMPL(x)
#define KVBITS_VERSION_STRING            \
  KVBITS_STRINGIFY(KVBITS_VERSION_MAJOR) \
  "." KVBITS_STRINGIFY(KVBITS_VERSION_MINOR) "." KVBITS_STRINGIFY(KVBITS_VERSION_PATCH)

// Hot-path preconditions are checked only in debug builds (or when forced);
// loaders and public entry points always check, whatever this says.
#if !defined(KVBITS_DEBUG_CHECKS)
#if defined(NDEBUG)
#define KVBITS_DEBUG_CHECKS 0
#else
#define KVBITS_DEBUG_CHECKS 1
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define KVBITS_RESTRICT __restrict__
#define KVBITS_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define KVBITS_RESTRICT __restrict
#define KVBITS_ALWAYS_INLINE inline
#endif

namespace kvbits {
inline constexpr int kVersionMajor = KVBITS_VERSION_MAJOR;
inline constexpr int kVersionMinor = KVBITS_VERSION_MINOR;
inline constexpr int kVersionPatch = KVBITS_VERSION_PATCH;
inline constexpr const char* kVersionString = KVBITS_VERSION_STRING;
}  // namespace kvbits
