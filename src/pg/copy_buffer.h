// CopyBuffer: one CopyData message as libpq hands it out (PQgetCopyData), owned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

namespace pgseed::pg {

// Move-only owner of a buffer libpq allocated; frees it (PQfreemem) when destroyed or
// reset. Wraps libpq's buffer as is: no copy.
class CopyBuffer {
 public:
  CopyBuffer() = default;
  ~CopyBuffer() { reset(); }
  CopyBuffer(CopyBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  CopyBuffer& operator=(CopyBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  CopyBuffer(const CopyBuffer&) = delete;
  CopyBuffer& operator=(const CopyBuffer&) = delete;

  bool empty() const { return data_ == nullptr; }
  size_t size() const { return size_; }
  const char* data() const { return data_; }
  std::string_view text() const { return {data_, size_}; }
  std::span<const uint8_t> bytes() const {
    return {reinterpret_cast<const uint8_t*>(data_), size_};
  }

  // Frees the buffer (if any); the buffer is empty afterwards.
  void reset();
  // Takes ownership of `data` (from PQgetCopyData, `size` > 0 bytes).
  void adopt(char* data, size_t size) {
    reset();
    data_ = data;
    size_ = size;
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace pgseed::pg
