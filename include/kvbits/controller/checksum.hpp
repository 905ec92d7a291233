// SPDX-License-Identifier: MIT
#pragma once

// The checksums are generic (weight files and cache files use them): they live in core/.
#include "kvbits/core/checksum.hpp"
