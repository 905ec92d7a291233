// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

#include "kvbits/codec/backend.hpp"
#include "kvbits/codec/xsimd_kernels.hpp"
#include "kvbits/core/isa_namespace.hpp"

namespace kvbits {

namespace detail {

// "xsimd-" + the xsimd name of the widest architecture the kernels use, built at compile time.
template <class Arch>
inline constexpr auto kXsimdBackendName = [] {
  constexpr std::string_view prefix = "xsimd-";
  constexpr std::string_view arch = Arch::name();
  std::array<char, prefix.size() + arch.size()> text{};
  for (std::size_t i = 0; i < prefix.size(); ++i) text[i] = prefix[i];
  for (std::size_t i = 0; i < arch.size(); ++i) text[prefix.size() + i] = arch[i];
  return text;
}();

}  // namespace detail

inline namespace KVBITS_ISA_NAMESPACE {

/**
 * The SIMD backend: xsimd kernels for the architecture the compiler targets
 * (SSE4.2, AVX2 + FMA or AVX-512 on x86, NEON on AArch64), chosen at compile time. Encoded bytes are
 * identical to ScalarBackend's; decode/dot/axpy agree with it within the
 * floating-point tolerances stated in tests/test_codec.cpp.
 */
struct XsimdBackend : detail::CodecFrontend<kernel::XsimdKernels> {
  /// @return "xsimd-<arch>", e.g. "xsimd-avx512bw" or "xsimd-arm64+neon"; "xsimd-none" without SIMD kernels.
  static constexpr std::string_view name() noexcept {
    constexpr auto& text = detail::kXsimdBackendName<kernel::simd::WidestArch>;
    return {text.data(), text.size()};
  }
  /// @return the batch width in bytes: buffers aligned to it load fastest (alignment is never required).
  static constexpr std::size_t alignment() noexcept {
#if KVBITS_XSIMD_KERNELS
    return kernel::simd::Lanes<kernel::simd::WidestArch>::kWidth * sizeof(float);
#else
    return alignof(float);
#endif
  }
  /// @return true when this build has SIMD kernels (otherwise every call runs the scalar reference).
  static constexpr bool available() noexcept { return KVBITS_XSIMD_KERNELS != 0; }
};

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits

#ifdef KVBITS_EXTERN_KERNELS
// Compiled once, in the source file that includes kvbits/kernel_instantiations.hpp.
extern template struct kvbits::detail::CodecDispatch<kvbits::kernel::XsimdKernels>;
#endif
