// Byte helpers the encoders and decoders share: big-endian integers, hex digits, varints.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/byte_reader.h"

namespace pgseed {

// Appends the low `bytes` bytes of `v`, most significant first (network order).
inline void append_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// The unsigned big-endian integer in `s` (at most 8 bytes; the caller checks the size).
inline uint64_t read_be(std::string_view s) {
  uint64_t v = 0;
  for (char c : s) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

// The value of one hex digit (either case), or -1 for any other character.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Lower-case hex digits, by value.
inline constexpr char kHexDigits[] = "0123456789abcdef";
// "00" .. "99": the two digits of n at kTwoDigits + 2 * n (0 <= n <= 99).
inline constexpr char kTwoDigits[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

// varint: unsigned LEB128 (7 bits per byte, least significant first, high bit = more).
void append_varint(std::string& out, uint64_t value);
// Reads one varint. Throws Error(kDecode) (via ByteReader) on a short buffer and on a
// varint longer than 10 bytes or overflowing 64 bits.
uint64_t read_varint(ByteReader& in, const char* what = "varint");

}  // namespace pgseed
