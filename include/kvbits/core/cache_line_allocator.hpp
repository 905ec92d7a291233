// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <new>

namespace kvbits {

/// Bytes of one cache line on the CPUs kvbits targets (x86-64, AArch64 cores).
inline constexpr std::size_t kCacheLineBytes = 64;

/**
 * A std::allocator whose blocks start on a cache line and fill whole lines, so
 * buffers written by different threads never share one: no core's writes evict
 * another's line (false sharing).
 */
template <class T>
struct CacheLineAllocator {
  using value_type = T;  ///< what the allocator hands out

  CacheLineAllocator() noexcept = default;
  /// Rebinding copy, as std::allocator_traits requires.
  template <class U>
  explicit CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}

  /// @return room for `count` T on whole cache lines of their own; throws std::bad_alloc.
  [[nodiscard]] T* allocate(std::size_t count) {
    if (count > (static_cast<std::size_t>(-1) - (kCacheLineBytes - 1)) / sizeof(T)) throw std::bad_alloc();
    const std::size_t bytes = (count * sizeof(T) + kCacheLineBytes - 1) / kCacheLineBytes * kCacheLineBytes;
    return static_cast<T*>(::operator new (bytes, std::align_val_t{kCacheLineBytes}));
  }

  /// Frees what allocate() returned.
  void deallocate(T* block, std::size_t) noexcept {
    ::operator delete (block, std::align_val_t{kCacheLineBytes});
  }

  /// Every instance frees what any other allocated.
  template <class U>
  friend bool operator==(const CacheLineAllocator&, const CacheLineAllocator<U>&) noexcept {
    return true;
  }
};

}  // namespace kvbits
