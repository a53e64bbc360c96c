// Buf: builds wire bytes by hand, the way the server writes them, for the decoder tests.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace pgseed::test_support {

using Bytes = std::vector<uint8_t>;

// Builds a message the way the server writes it: big-endian integers, NUL-terminated strings.
class Buf {
 public:
  Buf& u8(uint8_t v) {
    data_.push_back(v);
    return *this;
  }
  Buf& u16(uint16_t v) { return be(v, 2); }
  Buf& u32(uint32_t v) { return be(v, 4); }
  Buf& u64(uint64_t v) { return be(v, 8); }
  Buf& str(const std::string& s) {
    raw(s);
    return u8(0);
  }
  Buf& raw(const std::string& s) {
    data_.insert(data_.end(), s.begin(), s.end());
    return *this;
  }
  Buf& text(const std::string& s) {  // one 't' tuple value
    u8('t').u32(static_cast<uint32_t>(s.size()));
    return raw(s);
  }
  const Bytes& bytes() const { return data_; }
  operator std::span<const uint8_t>() const { return data_; }

 private:
  Buf& be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) data_.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Bytes data_;
};

}  // namespace pgseed::test_support
