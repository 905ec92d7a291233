// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <string_view>

#include "kvbits/codec/backend.hpp"
#include "kvbits/codec/reference.hpp"

namespace kvbits {

/// The scalar reference backend: plain C++, the definition of correct.
struct ScalarBackend : detail::CodecFrontend<kernel::ScalarKernels> {
  static constexpr std::string_view name() noexcept { return "scalar"; }
  static constexpr std::size_t alignment() noexcept { return alignof(float); }
  static constexpr bool available() noexcept { return true; }
};

}  // namespace kvbits
