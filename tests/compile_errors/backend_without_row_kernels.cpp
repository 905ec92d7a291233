// SPDX-License-Identifier: MIT
// A backend must provide the attention kernels dot_rows and axpy_rows as well as the vector codec.
// expect: 'B::dot_rows(format, q, n, rows, n, n, scores)'
// expect-GNU: requires (Policy<P>) && (Backend<B>) class kvbits::QuantizedKVCache
// expect-Clang: 'VectorsOnly' does not satisfy 'Backend'
// expect-Clang: no member named 'dot_rows' in 'VectorsOnly'
#include "user_types.hpp"

struct VectorsOnly : user::RenamedScalarCodec {};

kvbits::QuantizedKVCache<user::SinksWide, VectorsOnly> cache(user::small_options());
