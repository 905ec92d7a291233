// SPDX-License-Identifier: MIT
#pragma once

#include <cerrno>
#include <cstddef>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvbits/core/error.hpp"

namespace kvbits::gguf::detail {

/**
 * The bytes of a GGUF file: either a read-only private mapping of the file
 * (unmapped by the destructor) or an owned copy of an in-memory buffer.
 * Move-only. The bytes never move in memory while the object lives, so
 * offsets into bytes() stay valid across moves.
 */
class MappedBytes {
 public:
  MappedBytes() = default;

  /**
   * Maps `path` read-only.
   * @param path file to map
   * @return the mapping (an empty file gives an empty span and no mapping)
   * @throws Error(io_error) naming the path and the system's reason when
   *         open, fstat or mmap fails, or when the path is not a regular file
   */
  static MappedBytes map_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_errno(path, "cannot open");
    struct ::stat info {};
    if (::fstat(fd, &info) != 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      throw_errno(path, "cannot stat");
    }
    if (!S_ISREG(info.st_mode)) {
      ::close(fd);
      throw Error(Errc::io_error, path + ": not a regular file");
    }
    MappedBytes result;
    const auto size = static_cast<std::size_t>(info.st_size);
    if (size > 0) {  // mmap rejects length 0
      void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (map == MAP_FAILED) {
        const int saved = errno;
        ::close(fd);
        errno = saved;
        throw_errno(path, "cannot mmap");
      }
      result.map_ = map;
      result.map_size_ = size;
    }
    ::close(fd);  // the mapping keeps the file alive
    return result;
  }

  /// @return an owned copy of `bytes`.
  static MappedBytes copy_of(std::span<const std::byte> bytes) {
    MappedBytes result;
    result.owned_.assign(bytes.begin(), bytes.end());
    return result;
  }

  MappedBytes(const MappedBytes&) = delete;
  MappedBytes& operator=(const MappedBytes&) = delete;
  MappedBytes(MappedBytes&& other) noexcept
      : map_(std::exchange(other.map_, nullptr)),
        map_size_(std::exchange(other.map_size_, 0)),
        owned_(std::move(other.owned_)) {}
  MappedBytes& operator=(MappedBytes&& other) noexcept {
    if (this != &other) {
      unmap();
      map_ = std::exchange(other.map_, nullptr);
      map_size_ = std::exchange(other.map_size_, 0);
      owned_ = std::move(other.owned_);
    }
    return *this;
  }
  ~MappedBytes() { unmap(); }

  /// @return the file's bytes.
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept {
    if (map_ != nullptr) return {static_cast<const std::byte*>(map_), map_size_};
    return owned_;
  }

 private:
  [[noreturn]] static void throw_errno(const std::string& path, const char* action) {
    const int code = errno;
    throw Error(Errc::io_error, path + ": " + action + ": " + std::generic_category().message(code));
  }

  void unmap() noexcept {
    if (map_ != nullptr) ::munmap(map_, map_size_);
    map_ = nullptr;
    map_size_ = 0;
  }

  void* map_ = nullptr;           // start of the mapping, or null when owned_ holds the bytes
  std::size_t map_size_ = 0;      // mapped length in bytes
  std::vector<std::byte> owned_;  // [bytes] copy made by copy_of
};

}  // namespace kvbits::gguf::detail
