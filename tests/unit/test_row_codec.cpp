// RowCodec: the documented bytes, lossless round trips of random values of every storage
// class (typed cells where they print back exactly, text cells otherwise), and corrupt rows.
#include <gtest/gtest.h>

#include <bit>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/byte_reader.h"
#include "common/bytes.h"
#include "pgseed/error.h"
#include "store/row_codec.h"
#include "model/value_codec.h"

namespace pgseed {
namespace {

ColumnDef col(uint32_t oid) {
  ColumnDef c;
  c.name = "c" + std::to_string(oid);
  c.type_oid = oid;
  c.base_type_oid = oid;
  c.storage = storage_class_for_type(oid);
  return c;
}

std::string hex(const std::string& s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
    out.push_back(' ');
  }
  return out;
}

std::string encode1(const ColumnDef& c, const Datum& d) {
  std::string out;
  RowCodec::encode(out, std::span<const ColumnDef>(&c, 1), std::span<const Datum>(&d, 1));
  return out;
}

// Encodes one value, checks it decodes to the same text, returns the cell's tag.
uint8_t round_trip(const ColumnDef& c, std::string_view text) {
  std::string enc = encode1(c, Datum::of(text));
  std::string scratch;
  Row row;
  RowCodec::decode(enc, scratch, row);
  EXPECT_EQ(row.size(), 1u);
  if (row.size() != 1) return 0xFF;
  EXPECT_EQ(row[0].kind, Datum::Kind::kText);
  EXPECT_EQ(row[0].text, text) << "column type " << c.type_oid;
  return static_cast<uint8_t>(enc[1]);
}

TEST(RowCodec, DocumentedBytes) {
  std::vector<ColumnDef> cols = {col(kInt8Oid),   col(25),        col(kBoolOid),  col(kInt4Oid),
                                 col(kFloat8Oid), col(kByteaOid), col(kFloat4Oid)};
  std::vector<Datum> vals = {Datum::of("-1"),  Datum::of("ab"),      Datum::of("t"), Datum::null(),
                             Datum::of("1.5"), Datum::of("\\x0aff"), Datum::of("-0")};
  std::string out;
  RowCodec::encode(out, cols, vals);
  EXPECT_EQ(hex(out),
            "07 "                          // 7 cells
            "01 01 "                       // int -1: zigzag 1
            "07 02 61 62 "                 // text "ab"
            "05 "                          // true
            "00 "                          // NULL
            "02 3f f8 00 00 00 00 00 00 "  // float8 1.5
            "06 02 0a ff "                 // bytea, 2 bytes
            "03 80 00 00 00 ");            // float4 -0
  std::string scratch;
  Row row;
  RowCodec::decode(out, scratch, row);
  ASSERT_EQ(row.size(), 7u);
  EXPECT_EQ(row[0].text, "-1");
  EXPECT_EQ(row[1].text, "ab");
  EXPECT_EQ(row[2].text, "t");
  EXPECT_TRUE(row[3].is_null());
  EXPECT_EQ(row[4].text, "1.5");
  EXPECT_EQ(row[5].text, "\\x0aff");
  EXPECT_EQ(row[6].text, "-0");
}

TEST(RowCodec, Varint) {
  std::mt19937_64 rng(21);
  for (int i = 0; i < 5000; ++i) {
    uint64_t v = rng() >> (rng() % 64);
    if (i == 0) v = std::numeric_limits<uint64_t>::max();
    std::string s;
    append_varint(s, v);
    ByteReader r({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
    ASSERT_EQ(read_varint(r), v);
    ASSERT_TRUE(r.at_end());
  }
  std::string too_long(10, '\xff');
  too_long += '\x01';
  ByteReader r({reinterpret_cast<const uint8_t*>(too_long.data()), too_long.size()});
  EXPECT_THROW(read_varint(r), Error);
}

TEST(RowCodec, IntegersRoundTrip) {
  std::mt19937_64 rng(22);
  const ColumnDef c = col(kInt8Oid);
  for (int i = 0; i < 5000; ++i) {
    int64_t v = static_cast<int64_t>(rng()) >> (rng() % 64);
    ASSERT_EQ(round_trip(c, std::to_string(v)), RowCodec::kInt);
  }
  EXPECT_EQ(round_trip(c, std::to_string(std::numeric_limits<int64_t>::min())), RowCodec::kInt);
  // Texts that would not print back stay text.
  for (const char* t : {"007", "-0", "+5", "1 ", "", "99999999999999999999"})
    EXPECT_EQ(round_trip(c, t), RowCodec::kText) << t;
}

TEST(RowCodec, FloatsRoundTrip) {
  std::mt19937_64 rng(23);
  const ColumnDef f8 = col(kFloat8Oid), f4 = col(kFloat4Oid);
  for (int i = 0; i < 5000; ++i) {
    double d = std::bit_cast<double>(rng());
    ASSERT_EQ(round_trip(f8, format_float8(d)), RowCodec::kFloat8) << format_float8(d);
    float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    ASSERT_EQ(round_trip(f4, format_float4(f)), RowCodec::kFloat4) << format_float4(f);
  }
  for (const char* t : {"NaN", "Infinity", "-Infinity", "-0", "0", "1e+100", "5e-324"})
    EXPECT_EQ(round_trip(f8, t), RowCodec::kFloat8) << t;
  for (const char* t : {"NaN", "-0", "3.4028235e+38", "1.1"})
    EXPECT_EQ(round_trip(f4, t), RowCodec::kFloat4) << t;
  // Not PostgreSQL's shortest form: kept as text, so still exact.
  for (const char* t : {"1.50", "1E5", "0.1000000000000000055511151231257827", "nan", "inf"})
    EXPECT_EQ(round_trip(f8, t), RowCodec::kText) << t;
  // A float8 text in a float4 column that float4 cannot print back.
  EXPECT_EQ(round_trip(f4, "0.1000000000000001"), RowCodec::kText);
}

TEST(RowCodec, BoolByteaTextRoundTrip) {
  std::mt19937_64 rng(24);
  const ColumnDef b = col(kBoolOid), by = col(kByteaOid), tx = col(25), num = col(1700);
  EXPECT_EQ(round_trip(b, "t"), RowCodec::kTrue);
  EXPECT_EQ(round_trip(b, "f"), RowCodec::kFalse);
  EXPECT_EQ(round_trip(b, "true"), RowCodec::kText);
  for (int i = 0; i < 2000; ++i) {
    std::string raw;
    size_t n = rng() % 40;
    for (size_t k = 0; k < n; ++k) raw.push_back(static_cast<char>(rng()));
    std::string h;
    append_bytea_hex(h, raw);
    ASSERT_EQ(round_trip(by, h), RowCodec::kBytes);
    ASSERT_EQ(round_trip(tx, raw), RowCodec::kText);
  }
  for (const char* t : {"\\x0A", "\\x0", "abc\\000", "\\xzz"})
    EXPECT_EQ(round_trip(by, t), RowCodec::kText) << t;
  EXPECT_EQ(round_trip(num, "12.3400"), RowCodec::kText);
}

TEST(RowCodec, RandomRowsRoundTrip) {
  std::mt19937_64 rng(25);
  const std::vector<ColumnDef> types = {col(kInt2Oid),   col(kInt4Oid), col(kFloat8Oid),
                                        col(kFloat4Oid), col(kBoolOid), col(kByteaOid),
                                        col(25)};
  for (int i = 0; i < 3000; ++i) {
    std::vector<ColumnDef> cols;
    std::vector<std::string> texts;
    std::vector<bool> nulls;
    size_t n = rng() % 8;
    for (size_t k = 0; k < n; ++k) {
      cols.push_back(types[rng() % types.size()]);
      nulls.push_back(rng() % 5 == 0);
      switch (cols.back().storage) {
        case StorageClass::kInteger:
          texts.push_back(std::to_string(int16_t(rng())));
          break;
        case StorageClass::kReal:
          texts.push_back(format_float8(std::bit_cast<double>(rng())));
          break;
        case StorageClass::kBool:
          texts.push_back(rng() % 2 ? "t" : "f");
          break;
        case StorageClass::kBytes:
          texts.push_back("\\x" + std::to_string(rng() % 10) + "f");
          break;
        case StorageClass::kText:
          texts.push_back(std::string(rng() % 300, 'x'));
          break;
      }
    }
    std::vector<Datum> vals;
    for (size_t k = 0; k < n; ++k) vals.push_back(nulls[k] ? Datum::null() : Datum::of(texts[k]));
    std::string enc;
    RowCodec::encode(enc, cols, vals);
    std::string scratch = "leftover";
    Row row;
    RowCodec::decode(enc, scratch, row);
    ASSERT_EQ(row.size(), n);
    for (size_t k = 0; k < n; ++k) {
      ASSERT_EQ(row[k].is_null(), static_cast<bool>(nulls[k]));
      if (!nulls[k]) {
        ASSERT_EQ(row[k].text, texts[k]);
      }
    }
  }
}

TEST(RowCodec, Errors) {
  const ColumnDef c = col(kInt4Oid);
  EXPECT_THROW(encode1(c, Datum::unchanged()), Error);
  std::vector<ColumnDef> two = {c, c};
  std::vector<Datum> one = {Datum::of("1")};
  std::string out;
  EXPECT_THROW(RowCodec::encode(out, two, one), Error);

  std::string good;
  std::vector<ColumnDef> cols = {col(25), col(kFloat8Oid), col(kInt8Oid)};
  std::vector<Datum> vals = {Datum::of("hello"), Datum::of("2.5"), Datum::of("-77")};
  RowCodec::encode(good, cols, vals);
  std::string scratch;
  Row row;
  for (size_t n = 0; n < good.size(); ++n) {
    try {
      RowCodec::decode(std::string_view(good.data(), n), scratch, row);
      ADD_FAILURE() << "truncated row of " << n << " bytes decoded";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::kStore);
    }
  }
  EXPECT_THROW(RowCodec::decode(good + "x", scratch, row), Error);  // trailing bytes
  EXPECT_THROW(RowCodec::decode(std::string("\x01\x09", 2), scratch, row), Error);      // tag
  EXPECT_THROW(RowCodec::decode(std::string("\xff\xff\x03", 3), scratch, row), Error);  // count
  EXPECT_THROW(RowCodec::decode(std::string("\x01\x07\x05"
                                            "ab",
                                            5),
                                scratch, row),
               Error);
}

}  // namespace
}  // namespace pgseed
