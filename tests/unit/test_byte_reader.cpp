// ByteReader (src/common/byte_reader.h): big-endian reads, short reads that throw and leave
// the cursor where it was, lengths that would overflow, NUL-terminated strings.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "common/byte_reader.h"
#include "pgseed/error.h"
#include "unit/wire_buf.h"

namespace pgseed {
namespace {

using test_support::Buf;

TEST(ByteReader, ReadsBigEndianIntegers) {
  Buf b;
  b.u8(0x01).u16(0x0203).u32(0x04050607).u64(0x08090a0b0c0d0e0fULL).u32(0xfffffffe).u64(~0ULL);
  ByteReader r(b);
  EXPECT_EQ(r.read_u8(), 0x01);
  EXPECT_EQ(r.read_u16(), 0x0203);
  EXPECT_EQ(r.read_u32(), 0x04050607u);
  EXPECT_EQ(r.read_u64(), 0x08090a0b0c0d0e0fULL);
  EXPECT_EQ(r.read_i32(), -2);
  EXPECT_EQ(r.read_i64(), -1);
  EXPECT_TRUE(r.at_end());
  EXPECT_NO_THROW(r.expect_end());
}

TEST(ByteReader, ShortReadThrowsAndLeavesCursor) {
  Buf b;
  b.u8(1).u8(2).u8(3);
  ByteReader r(b, "ctx");
  EXPECT_THROW(r.read_u32(), Error);
  EXPECT_EQ(r.remaining(), 3u);
  EXPECT_THROW(r.read_bytes(4), Error);
  EXPECT_THROW(r.read_u64(), Error);
  EXPECT_EQ(r.read_u16(), 0x0102);
  try {
    r.read_u16("the answer");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::kDecode);
    EXPECT_EQ(std::string(e.what()),
              "ctx: truncated data reading the answer at offset 2: need 2 bytes, 1 remain");
  }
  EXPECT_THROW(r.expect_end(), Error);
  EXPECT_EQ(r.read_u8(), 3);
  EXPECT_THROW(r.read_u8(), Error);
  EXPECT_EQ(r.read_bytes(0).size(), 0u);
}

TEST(ByteReader, HugeLengthDoesNotOverflow) {
  Buf b;
  b.u8(1);
  ByteReader r(b);
  r.read_u8();
  EXPECT_THROW(r.read_bytes(SIZE_MAX), Error);
  EXPECT_THROW(r.read_text(SIZE_MAX - 1), Error);
}

TEST(ByteReader, CStrings) {
  Buf b;
  b.str("abc").str("").raw("no-nul");
  ByteReader r(b);
  EXPECT_EQ(r.read_cstring(), "abc");
  EXPECT_EQ(r.read_cstring(), "");
  EXPECT_THROW(r.read_cstring(), Error);
  EXPECT_EQ(r.read_text(6), "no-nul");
  EXPECT_THROW(r.read_cstring(), Error);  // empty rest
  ByteReader empty(std::span<const uint8_t>{});
  EXPECT_THROW(empty.read_cstring(), Error);
  EXPECT_THROW(empty.read_u8(), Error);
}

}  // namespace
}  // namespace pgseed
