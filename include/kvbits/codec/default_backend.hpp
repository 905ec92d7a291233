// SPDX-License-Identifier: MIT
#pragma once

#include "kvbits/codec/scalar_backend.hpp"

namespace kvbits {

/// The backend a cache uses unless told otherwise.
using DefaultBackend = ScalarBackend;

}  // namespace kvbits
