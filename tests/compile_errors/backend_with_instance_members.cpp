// SPDX-License-Identifier: MIT
// A backend is an empty tag type: its members are static, so an object-style backend is rejected.
// expect: 'B::name()'
// expect-GNU: requires (Policy<P>) && (Backend<B>) class kvbits::QuantizedKVCache
// expect-Clang: 'ObjectBackend' does not satisfy 'Backend'
// expect-Clang: call to non-static member function without an object argument
#include "user_types.hpp"

struct ObjectBackend {
  std::string_view name() const noexcept { return "object"; }
  std::size_t alignment() const noexcept { return alignof(float); }
  bool available() const noexcept { return true; }
};

kvbits::QuantizedKVCache<user::SinksWide, ObjectBackend> cache(user::small_options());
