#include "common/bytes.h"

#include "pgseed/error.h"

namespace pgseed {

void append_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

uint64_t read_varint(ByteReader& in, const char* what) {
  uint64_t value = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    uint8_t b = in.read_u8(what);
    uint64_t bits = b & 0x7F;
    // The tenth byte may only carry the top bit of a 64-bit value.
    if (shift == 63 && bits > 1)
      throw Error(ErrorCategory::kDecode, std::string("varint overflows 64 bits reading ") + what);
    value |= bits << shift;
    if ((b & 0x80) == 0) return value;
  }
  throw Error(ErrorCategory::kDecode, std::string("varint longer than 10 bytes reading ") + what);
}

}  // namespace pgseed
