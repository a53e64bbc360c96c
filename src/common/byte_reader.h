// ByteReader — the one bounds-checked cursor every wire decoder reads through.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "pgseed/error.h"

namespace pgseed {

// Reads big-endian (network order) integers, byte runs and NUL-terminated strings from a
// buffer it does not own. Every read first checks `n > remaining()`; on a short buffer it
// throws pgseed::Error (kDecode) naming what was being read, and the cursor does not move.
// It never reads outside the span, whatever the input. Views it returns point into the
// buffer and live as long as it does. `context` (a string literal, e.g. "pgoutput") starts
// every error message.
class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> data, const char* context = "decode")
      : data_(data), context_(context) {}

  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }
  bool at_end() const { return pos_ == data_.size(); }

  uint8_t read_u8(const char* what = "byte") { return static_cast<uint8_t>(read_be(1, what)); }
  uint16_t read_u16(const char* what = "int16") { return static_cast<uint16_t>(read_be(2, what)); }
  uint32_t read_u32(const char* what = "int32") { return static_cast<uint32_t>(read_be(4, what)); }
  uint64_t read_u64(const char* what = "int64") { return read_be(8, what); }
  // Two's complement reinterpretation of the unsigned value (well defined since C++20).
  int16_t read_i16(const char* what = "int16") { return static_cast<int16_t>(read_u16(what)); }
  int32_t read_i32(const char* what = "int32") { return static_cast<int32_t>(read_u32(what)); }
  int64_t read_i64(const char* what = "int64") { return static_cast<int64_t>(read_u64(what)); }

  // The next n bytes.
  std::span<const uint8_t> read_bytes(size_t n, const char* what = "bytes") {
    require(n, what);
    std::span<const uint8_t> out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }

  // The next n bytes as characters.
  std::string_view read_text(size_t n, const char* what = "text") {
    std::span<const uint8_t> bytes = read_bytes(n, what);
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }

  // A NUL-terminated string; returns it without the NUL and moves past the NUL.
  std::string_view read_cstring(const char* what = "string") {
    std::span<const uint8_t> rest = data_.subspan(pos_);
    const uint8_t* begin = rest.data();
    const void* nul = rest.empty() ? nullptr : std::memchr(begin, 0, rest.size());
    if (nul == nullptr) {
      throw Error(ErrorCategory::kDecode, prefix(what) + "no terminating NUL in the " +
                                              std::to_string(remaining()) + " remaining bytes");
    }
    size_t len = static_cast<size_t>(static_cast<const uint8_t*>(nul) - begin);
    pos_ += len + 1;
    return {reinterpret_cast<const char*>(begin), len};
  }

  // Throws unless every byte has been read: a message longer than its fields is malformed.
  void expect_end(const char* what = "message") const {
    if (!at_end()) {
      throw Error(ErrorCategory::kDecode, std::string(context_) + ": malformed " + what + ": " +
                                              std::to_string(remaining()) +
                                              " unexpected trailing bytes at offset " +
                                              std::to_string(pos_));
    }
  }

 private:
  void require(size_t n, const char* what) const {
    if (n > remaining()) {
      throw Error(ErrorCategory::kDecode, prefix(what) + "need " + std::to_string(n) + " bytes, " +
                                              std::to_string(remaining()) + " remain");
    }
  }

  std::string prefix(const char* what) const {
    return std::string(context_) + ": truncated data reading " + what + " at offset " +
           std::to_string(pos_) + ": ";
  }

  uint64_t read_be(size_t n, const char* what) {
    require(n, what);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | data_[pos_ + i];
    pos_ += n;
    return v;
  }

  std::span<const uint8_t> data_;
  const char* context_;
  size_t pos_ = 0;
};

}  // namespace pgseed
