// value_codec: expected texts are PostgreSQL 15's own output (extra_float_digits=3),
// captured into tests/data/values/ by capture.py or copied from psql.
#include "model/value_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "model/pg_type.h"
#include "pgseed/error.h"

namespace pgseed {
namespace {

std::vector<std::string> read_lines(const std::string& name) {
  std::ifstream in(std::string(PGSEED_TEST_DATA_DIR) + "/values/" + name);
  EXPECT_TRUE(in) << "missing test data file " << name;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

const std::set<std::string> kNotReal = {"NaN", "Infinity", "-Infinity", "-0"};

TEST(ValueCodec, StorageClassForType) {
  EXPECT_EQ(storage_class_for_type(21), StorageClass::kInteger);
  EXPECT_EQ(storage_class_for_type(23), StorageClass::kInteger);
  EXPECT_EQ(storage_class_for_type(20), StorageClass::kInteger);
  EXPECT_EQ(storage_class_for_type(26), StorageClass::kInteger);
  EXPECT_EQ(storage_class_for_type(700), StorageClass::kReal);
  EXPECT_EQ(storage_class_for_type(701), StorageClass::kReal);
  EXPECT_EQ(storage_class_for_type(16), StorageClass::kBool);
  EXPECT_EQ(storage_class_for_type(17), StorageClass::kBytes);
  EXPECT_EQ(storage_class_for_type(1700), StorageClass::kText);  // numeric
  EXPECT_EQ(storage_class_for_type(25), StorageClass::kText);    // text
  EXPECT_EQ(storage_class_for_type(1007), StorageClass::kText);  // int4[]
  EXPECT_EQ(storage_class_for_type(0), StorageClass::kText);
}

TEST(ValueCodec, ParseInt64) {
  int64_t v = 42;
  EXPECT_TRUE(parse_int64("0", v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(parse_int64("-32768", v));
  EXPECT_EQ(v, -32768);
  EXPECT_TRUE(parse_int64("4294967295", v));  // the largest oid
  EXPECT_EQ(v, 4294967295);
  EXPECT_TRUE(parse_int64("9223372036854775807", v));
  EXPECT_EQ(v, std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(parse_int64("-9223372036854775808", v));
  EXPECT_EQ(v, std::numeric_limits<int64_t>::min());
  for (const char* bad : {"", "-", "+1", " 1", "1 ", "1.0", "1e3", "9223372036854775808",
                          "-9223372036854775809", "0x10", "abc"}) {
    v = 7;
    EXPECT_FALSE(parse_int64(bad, v)) << bad;
    EXPECT_EQ(v, 7) << bad;
  }
}

// Every float8 text the server printed must come back identical after a trip through a
// double (or, for the four values a REAL cannot hold, be refused by parse_float_exact).
TEST(ValueCodec, Float8CaptureRoundTrips) {
  const auto lines = read_lines("float8.txt");
  ASSERT_GT(lines.size(), 20000u);
  size_t checked = 0;
  size_t refused = 0;
  for (const auto& text : lines) {
    std::optional<double> v = parse_float_exact(text);
    if (!v) {
      EXPECT_TRUE(kNotReal.count(text)) << "refused: " << text;
      ++refused;
      continue;
    }
    ASSERT_EQ(format_float8(*v), text);
    ++checked;
  }
  EXPECT_EQ(checked + refused, lines.size());
  EXPECT_GT(checked, 20000u);
}

TEST(ValueCodec, Float4CaptureRoundTrips) {
  const auto lines = read_lines("float4.txt");
  ASSERT_GT(lines.size(), 20000u);
  size_t checked = 0;
  size_t refused = 0;
  for (const auto& text : lines) {
    std::optional<double> v = parse_float4_exact(text);
    if (!v) {
      EXPECT_TRUE(kNotReal.count(text)) << "refused: " << text;
      ++refused;
      continue;
    }
    ASSERT_EQ(format_float4(static_cast<float>(*v)), text);
    ++checked;
  }
  EXPECT_EQ(checked + refused, lines.size());
  EXPECT_GT(checked, 20000u);
}

TEST(ValueCodec, Float8Layout) {
  // From psql: SET extra_float_digits = 3; SELECT v::float8.
  const std::pair<double, const char*> cases[] = {
      {1e15, "1e+15"},
      {1e16, "1e+16"},
      {1e14, "100000000000000"},
      {123456789012345, "123456789012345"},
      {1234567890123456, "1.234567890123456e+15"},
      {99999999999999.99, "99999999999999.98"},
      {12345678901234567.0, "1.2345678901234568e+16"},
      {0.0001, "0.0001"},
      {0.000123, "0.000123"},
      {0.00001, "1e-05"},
      {1.5e-5, "1.5e-05"},
      {0.1, "0.1"},
      {0.3, "0.3"},
      {100, "100"},
      {1e30, "1e+30"},
      {1e100, "1e+100"},
      {-1e-100, "-1e-100"},
      {5e-324, "5e-324"},
      {std::numeric_limits<double>::max(), "1.7976931348623157e+308"},
      {std::numeric_limits<double>::min(), "2.2250738585072014e-308"},
      {0.0, "0"},
      {-0.0, "-0"},
      {std::numeric_limits<double>::quiet_NaN(), "NaN"},
      {std::numeric_limits<double>::infinity(), "Infinity"},
      {-std::numeric_limits<double>::infinity(), "-Infinity"},
  };
  for (const auto& [value, text] : cases) EXPECT_EQ(format_float8(value), text);
}

TEST(ValueCodec, Float4Layout) {
  // From psql: SET extra_float_digits = 3; SELECT v::float4.
  const std::pair<float, const char*> cases[] = {
      {0.1f, "0.1"},
      {1e6f, "1e+06"},
      {100000.0f, "100000"},
      {999999.0f, "999999"},
      {123456.7f, "123456.7"},
      {16777216.0f, "1.6777216e+07"},
      {1e-4f, "0.0001"},
      {1e-5f, "1e-05"},
      {-1.5e-5f, "-1.5e-05"},
      {0.3f, "0.3"},
      {std::numeric_limits<float>::max(), "3.4028235e+38"},
      {std::numeric_limits<float>::min(), "1.1754944e-38"},
      {std::numeric_limits<float>::denorm_min(), "1e-45"},
      {-0.0f, "-0"},
      {std::numeric_limits<float>::quiet_NaN(), "NaN"},
      {-std::numeric_limits<float>::infinity(), "-Infinity"},
  };
  for (const auto& [value, text] : cases) EXPECT_EQ(format_float4(value), text);
}

TEST(ValueCodec, AppendFloatAppends) {
  std::string out = "x=";
  append_float8(out, 1.5e-5);
  out += ",";
  append_float4(out, 0.1f);
  EXPECT_EQ(out, "x=1.5e-05,0.1");
}

TEST(ValueCodec, ParseFloatExactRefusesWhatRealCannotHold) {
  for (const char* t : {"NaN", "Infinity", "-Infinity", "-0", "-0.0", "nan", "inf", "infinity",
                        "", "abc", "1.5x", " 1", "+1", "1e400", "-1e400"}) {
    EXPECT_FALSE(parse_float_exact(t).has_value()) << t;
  }
  EXPECT_EQ(parse_float_exact("0"), 0.0);
  EXPECT_FALSE(std::signbit(*parse_float_exact("0")));
  EXPECT_EQ(parse_float_exact("1.5e-05"), 1.5e-5);
  EXPECT_EQ(parse_float_exact("5e-324"), 5e-324);  // denormals are plain REALs
  EXPECT_EQ(parse_float_exact("-1.7976931348623157e+308"),
            -std::numeric_limits<double>::max());
  EXPECT_EQ(parse_float_exact("123"), 123.0);
}

TEST(ValueCodec, ParseFloat4Exact) {
  for (const char* t : {"NaN", "Infinity", "-Infinity", "-0", "", "1e39", "x"}) {
    EXPECT_FALSE(parse_float4_exact(t).has_value()) << t;
  }
  // The nearest double to the text, which narrows to the float4 value...
  EXPECT_EQ(parse_float4_exact("0.1"), 0.1);
  EXPECT_EQ(parse_float4_exact("3.4028235e+38"), 3.4028235e+38);
  EXPECT_EQ(parse_float4_exact("1e-45"), 1e-45);
  // ...except where text -> double -> float rounds to a different float than
  // text -> float: then the float4 value itself.
  for (const char* t : {"7.038531e-26", "-7.038531e-26"}) {
    std::optional<double> v = parse_float4_exact(t);
    ASSERT_TRUE(v.has_value()) << t;
    EXPECT_NE(static_cast<float>(*parse_float_exact(t)), static_cast<float>(*v)) << t;
    EXPECT_EQ(*v, static_cast<double>(std::strtof(t, nullptr))) << t;
    EXPECT_EQ(format_float4(static_cast<float>(*v)), t);
  }
}

TEST(ValueCodec, Bool) {
  bool b = false;
  EXPECT_TRUE(parse_bool("t", b));
  EXPECT_TRUE(b);
  EXPECT_TRUE(parse_bool("f", b));
  EXPECT_FALSE(b);
  b = true;
  for (const char* bad : {"", "true", "T", "1", "0", "false", "tt"}) {
    EXPECT_FALSE(parse_bool(bad, b)) << bad;
    EXPECT_TRUE(b);
  }
  EXPECT_EQ(format_bool(true), "t");
  EXPECT_EQ(format_bool(false), "f");
}

// SELECT decode(string_agg(lpad(to_hex(i), 2, '0'), '' ORDER BY i), 'hex')
//   FROM generate_series(0, 255) i;
constexpr const char* kAllBytesHex =
    "\\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a"
    "2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f50515253545556"
    "5758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182"
    "838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadae"
    "afb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9da"
    "dbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

TEST(ValueCodec, ByteaHex) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(decode_bytea_hex(kAllBytesHex), all);
  std::string out = "prefix";
  append_bytea_hex(out, all);
  EXPECT_EQ(out, std::string("prefix") + kAllBytesHex);

  EXPECT_EQ(decode_bytea_hex("\\x0a00ff"), std::string("\x0a\x00\xff", 3));
  EXPECT_EQ(decode_bytea_hex("\\x0A00FF"), std::string("\x0a\x00\xff", 3));
  EXPECT_EQ(decode_bytea_hex("\\x"), "");
  out.clear();
  append_bytea_hex(out, "");
  EXPECT_EQ(out, "\\x");
}

TEST(ValueCodec, ByteaHexRejectsBadInput) {
  for (const char* bad : {"", "\\", "0a", "x0a", "\\X0a", "\\x0", "\\x0g", "\\xzz", "\\x0a0",
                          "\\000", "\\x 0a"}) {
    try {
      decode_bytea_hex(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::kDecode) << bad;
    }
  }
}

std::string csv(const Datum& d, bool single_column = false) {
  std::string out;
  append_csv_field(out, d, single_column);
  return out;
}

// Expectations from COPY ... TO STDOUT (FORMAT csv); the full captures are checked in
// test_copy_text.cpp.
TEST(ValueCodec, CsvField) {
  EXPECT_EQ(csv(Datum::null()), "");
  EXPECT_EQ(csv(Datum::of("")), "\"\"");
  EXPECT_EQ(csv(Datum::of("plain")), "plain");
  EXPECT_EQ(csv(Datum::of(" padded ")), " padded ");
  EXPECT_EQ(csv(Datum::of("tab\there")), "tab\there");
  EXPECT_EQ(csv(Datum::of("a,b")), "\"a,b\"");
  EXPECT_EQ(csv(Datum::of("say \"hi\"")), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv(Datum::of("\"")), "\"\"\"\"");
  EXPECT_EQ(csv(Datum::of("line\nbreak")), "\"line\nbreak\"");
  EXPECT_EQ(csv(Datum::of("cr\r")), "\"cr\r\"");
  EXPECT_EQ(csv(Datum::of("\\N")), "\\N");
  EXPECT_EQ(csv(Datum::of("back\\slash")), "back\\slash");
  EXPECT_EQ(csv(Datum::of("\\.")), "\\.");
  EXPECT_EQ(csv(Datum::of("\\."), true), "\"\\.\"");
  EXPECT_EQ(csv(Datum::of("\\.x"), true), "\\.x");
  EXPECT_EQ(csv(Datum::of("é,中"), true), "\"é,中\"");
  EXPECT_THROW(csv(Datum::unchanged()), Error);
}

std::string json(const Datum& d) {
  std::string out;
  append_json_value(out, d);
  return out;
}

TEST(ValueCodec, JsonValue) {
  EXPECT_EQ(json(Datum::null()), "null");
  EXPECT_EQ(json(Datum::of("")), "\"\"");
  EXPECT_EQ(json(Datum::of("null")), "\"null\"");
  EXPECT_EQ(json(Datum::of("a\"b\\c/d")), "\"a\\\"b\\\\c/d\"");
  EXPECT_EQ(json(Datum::of("\b\f\n\r\t")), "\"\\b\\f\\n\\r\\t\"");
  EXPECT_EQ(json(Datum::of(std::string_view("\x00\x01\x1f\x7f", 4))),
            "\"\\u0000\\u0001\\u001f\x7f\"");
  EXPECT_EQ(json(Datum::of("é ß 中文 🎉 \xe2\x80\xa8")), "\"é ß 中文 🎉 \xe2\x80\xa8\"");
  EXPECT_EQ(json(Datum::of("\xf4\x8f\xbf\xbf")), "\"\xf4\x8f\xbf\xbf\"");  // U+10FFFF
  EXPECT_THROW(json(Datum::unchanged()), Error);
}

TEST(ValueCodec, JsonValueReplacesInvalidUtf8) {
  const std::pair<std::string_view, const char*> cases[] = {
      {"a\x80z", "\"a\\ufffdz\""},                  // stray continuation byte
      {"\xc3", "\"\\ufffd\""},                      // truncated at the end
      {"\xc3z", "\"\\ufffdz\""},                    // truncated before ASCII
      {"\xc0\x80", "\"\\ufffd\\ufffd\""},           // overlong NUL
      {"\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\""},  // overlong '/'
      {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},  // surrogate U+D800
      {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},  // above U+10FFFF
      {"\xf5\x80", "\"\\ufffd\\ufffd\""},
      {"\xe2\x82", "\"\\ufffd\\ufffd\""},
      {"ok\xff" "\xc3\xa9", "\"ok\\ufffdé\""},
  };
  for (const auto& [in, expected] : cases) EXPECT_EQ(json(Datum::of(in)), expected) << in;
}

}  // namespace
}  // namespace pgseed
