// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <string_view>

#include "kvbits/codec/backend.hpp"
#include "kvbits/codec/reference.hpp"
#include "kvbits/core/isa_namespace.hpp"

namespace kvbits {
inline namespace KVBITS_ISA_NAMESPACE {

/// The scalar reference backend: plain C++, the definition of correct.
struct ScalarBackend : detail::CodecFrontend<kernel::ScalarKernels> {
  /// @return "scalar".
  static constexpr std::string_view name() noexcept { return "scalar"; }
  /// @return alignof(float): the kernels read element by element.
  static constexpr std::size_t alignment() noexcept { return alignof(float); }
  /// @return true: it runs everywhere.
  static constexpr bool available() noexcept { return true; }
};

}  // namespace KVBITS_ISA_NAMESPACE
}  // namespace kvbits

#ifdef KVBITS_EXTERN_KERNELS
// Compiled once, in the source file that includes kvbits/kernel_instantiations.hpp.
extern template struct kvbits::detail::CodecDispatch<kvbits::kernel::ScalarKernels>;
#endif
