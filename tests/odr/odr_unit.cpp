// SPDX-License-Identifier: MIT
// One translation unit of the two-instruction-set program, built once per instruction set;
// KVBITS_ODR_UNIT names its entry point (run_baseline or run_native).
#include "odr_unit.hpp"

#include "computation.hpp"

namespace kvbits::odr {

Run KVBITS_ODR_UNIT(const Input& input) { return compute<XsimdBackend>(input); }

}  // namespace kvbits::odr
