// KeyCodec: exact bytes for a few values, and property tests with a fixed seed: every
// value decodes back to its text, and memcmp order of keys equals PostgreSQL's order of
// the values (checked against simple reference comparisons written independently).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "pgseed/error.h"
#include "store/key_codec.h"
#include "model/value_codec.h"

namespace pgseed {
namespace {

constexpr int kIterations = 5000;

std::string enc(KeyEncoding e, std::string_view text) {
  std::string out;
  Datum d = Datum::of(text);
  append_key_fields(out, std::span<const KeyEncoding>(&e, 1), std::span<const Datum>(&d, 1), false);
  return out;
}

std::string dec(KeyEncoding e, std::string_view key) {
  auto v = read_key_fields(key, std::span<const KeyEncoding>(&e, 1));
  EXPECT_TRUE(key.empty()) << "bytes left after the key";
  EXPECT_TRUE(v[0].has_value());
  return v[0].value_or("<null>");
}

int sign(int x) { return (x > 0) - (x < 0); }
int bytes_cmp(const std::string& a, const std::string& b) { return sign(a.compare(b)); }

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

// Checks, for every pair, that key order equals `cmp` (the value order) and that equal
// texts give equal keys; and that every text decodes back.
template <typename Cmp>
void check_order(KeyEncoding e, const std::vector<std::string>& texts, Cmp cmp) {
  std::vector<std::string> keys;
  for (const auto& t : texts) {
    keys.push_back(enc(e, t));
    ASSERT_EQ(dec(e, keys.back()), t);
  }
  for (size_t i = 0; i + 1 < texts.size(); ++i) {
    const std::string& a = texts[i];
    const std::string& b = texts[i + 1];
    int want = cmp(a, b);
    if (want != 0) {
      ASSERT_EQ(bytes_cmp(keys[i], keys[i + 1]), want) << a << " vs " << b;
    } else {
      ASSERT_EQ(keys[i] == keys[i + 1], a == b) << a << " vs " << b;
    }
  }
  // And a full sort: sorting by key must sort by value.
  std::vector<size_t> idx(texts.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  for (size_t i = 0; i + 1 < idx.size(); ++i)
    ASSERT_LE(cmp(texts[idx[i]], texts[idx[i + 1]]), 0)
        << texts[idx[i]] << " sorted before " << texts[idx[i + 1]];
}

TEST(KeyCodec, ExactBytes) {
  EXPECT_EQ(hex(enc(KeyEncoding::kInt4, "1")), "01 80 00 00 01 ");
  EXPECT_EQ(hex(enc(KeyEncoding::kInt4, "-1")), "01 7f ff ff ff ");
  EXPECT_EQ(hex(enc(KeyEncoding::kInt2, "0")), "01 80 00 ");
  EXPECT_EQ(hex(enc(KeyEncoding::kOid, "4294967295")), "01 ff ff ff ff ");
  EXPECT_EQ(hex(enc(KeyEncoding::kText, std::string("a\0b", 3))), "01 61 00 ff 62 00 01 ");
  EXPECT_EQ(hex(enc(KeyEncoding::kBool, "t")), "01 01 ");
  // 1.50 = 0.15 x 10^1: class 04, exponent 1, digit pair "15" -> 16, terminator, scale 2.
  EXPECT_EQ(hex(enc(KeyEncoding::kNumeric, "1.50")), "01 04 80 00 00 01 10 00 02 ");
  // -1.5: class 02, exponent -1, inverted pair and terminator, scale 1.
  EXPECT_EQ(hex(enc(KeyEncoding::kNumeric, "-1.5")), "01 02 7f ff ff ff ef ff 01 ");
  EXPECT_EQ(hex(enc(KeyEncoding::kNumeric, "NaN")), "01 06 ");
  EXPECT_EQ(hex(enc(KeyEncoding::kFloat8, "-0")), "01 80 00 00 00 00 00 00 00 01 ");
  EXPECT_EQ(hex(enc(KeyEncoding::kBpchar, "ab  ")), "01 61 62 00 01 02 ");
  EXPECT_EQ(hex(enc(KeyEncoding::kDate, "2000-01-01")), "01 80 00 00 00 00 00 00 00 ");
  EXPECT_EQ(hex(enc(KeyEncoding::kUuid, "00010203-0405-0607-0809-0a0b0c0d0e0f")),
            "01 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f ");
}

TEST(KeyCodec, Integers) {
  std::mt19937_64 rng(1);
  struct Case {
    KeyEncoding e;
    int64_t lo, hi;
  };
  for (Case c :
       {Case{KeyEncoding::kInt2, INT16_MIN, INT16_MAX},
        Case{KeyEncoding::kInt4, INT32_MIN, INT32_MAX},
        Case{KeyEncoding::kInt8, INT64_MIN, INT64_MAX}, Case{KeyEncoding::kOid, 0, UINT32_MAX}}) {
    std::vector<int64_t> values = {c.lo, c.hi, 0, 1, -1, c.lo + 1, c.hi - 1};
    std::uniform_int_distribution<int64_t> any(c.lo, c.hi), small(-300, 300);
    for (int i = 0; i < kIterations; ++i) {
      int64_t v = i % 3 == 0 ? small(rng) : any(rng);
      values.push_back(v);
    }
    for (int64_t& v : values) v = std::clamp(v, c.lo, c.hi);
    std::vector<std::string> texts;
    for (int64_t v : values) texts.push_back(std::to_string(v));
    check_order(c.e, texts, [](const std::string& a, const std::string& b) {
      int64_t x = std::stoll(a), y = std::stoll(b);
      return (x > y) - (x < y);
    });
  }
  EXPECT_THROW(enc(KeyEncoding::kInt2, "32768"), Error);
  EXPECT_THROW(enc(KeyEncoding::kInt4, "12a"), Error);
  EXPECT_THROW(enc(KeyEncoding::kOid, "-1"), Error);
  EXPECT_THROW(enc(KeyEncoding::kInt8, ""), Error);
}

// PostgreSQL's float order: NaN equals NaN and is above everything; -0 equals 0.
int float_cmp(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) - std::isnan(b);
  return (a > b) - (a < b);
}

double random_double(std::mt19937_64& rng) {
  static const double kSpecial[] = {0.0,
                                    -0.0,
                                    std::numeric_limits<double>::quiet_NaN(),
                                    std::numeric_limits<double>::infinity(),
                                    -std::numeric_limits<double>::infinity(),
                                    std::numeric_limits<double>::denorm_min(),
                                    -std::numeric_limits<double>::denorm_min(),
                                    std::numeric_limits<double>::max(),
                                    std::numeric_limits<double>::lowest(),
                                    1.0,
                                    -1.0,
                                    0.1};
  switch (rng() % 4) {
    case 0:
      return kSpecial[rng() % std::size(kSpecial)];
    case 1:
      return static_cast<double>(static_cast<int>(rng() % 21) - 10) / 4;  // many ties
    default:
      return std::bit_cast<double>(rng());
  }
}

TEST(KeyCodec, Float8) {
  std::mt19937_64 rng(2);
  std::vector<std::string> texts;
  for (int i = 0; i < kIterations; ++i) texts.push_back(format_float8(random_double(rng)));
  check_order(KeyEncoding::kFloat8, texts, [](const std::string& a, const std::string& b) {
    auto v = [](const std::string& t) {
      if (t == "NaN") return std::numeric_limits<double>::quiet_NaN();
      if (t == "Infinity") return std::numeric_limits<double>::infinity();
      if (t == "-Infinity") return -std::numeric_limits<double>::infinity();
      return std::strtod(t.c_str(), nullptr);  // std::stod refuses subnormals
    };
    return float_cmp(v(a), v(b));
  });
}

TEST(KeyCodec, Float4) {
  std::mt19937_64 rng(3);
  std::vector<std::string> texts;
  std::vector<float> values;
  for (int i = 0; i < kIterations; ++i) {
    float f = rng() % 3 == 0 ? static_cast<float>(random_double(rng))
                             : std::bit_cast<float>(static_cast<uint32_t>(rng()));
    values.push_back(f);
    texts.push_back(format_float4(f));
  }
  std::vector<std::string> keys;
  for (const auto& t : texts) {
    keys.push_back(enc(KeyEncoding::kFloat4, t));
    ASSERT_EQ(dec(KeyEncoding::kFloat4, keys.back()), t);
  }
  for (size_t i = 0; i + 1 < values.size(); ++i) {
    int want = float_cmp(values[i], values[i + 1]);
    if (want != 0) {
      ASSERT_EQ(bytes_cmp(keys[i], keys[i + 1]), want) << texts[i] << " vs " << texts[i + 1];
    }
  }
}

// ---- numeric: a reference comparison on decimal strings ----

struct Dec {
  int rank;                         // 0 -Infinity, 1 finite, 2 Infinity, 3 NaN
  int sign;                         // finite: -1, 0, 1
  std::string int_part, frac_part;  // no leading / trailing zeros
};

Dec parse_dec(const std::string& t) {
  if (t == "-Infinity") return {0, 0, {}, {}};
  if (t == "Infinity") return {2, 0, {}, {}};
  if (t == "NaN") return {3, 0, {}, {}};
  Dec d{1, 1, {}, {}};
  std::string s = t;
  if (s[0] == '-') {
    d.sign = -1;
    s = s.substr(1);
  }
  size_t dot = s.find('.');
  d.int_part = s.substr(0, dot);
  d.frac_part = dot == std::string::npos ? "" : s.substr(dot + 1);
  d.int_part.erase(0, std::min(d.int_part.find_first_not_of('0'), d.int_part.size()));
  while (!d.frac_part.empty() && d.frac_part.back() == '0') d.frac_part.pop_back();
  if (d.int_part.empty() && d.frac_part.empty()) d.sign = 0;
  return d;
}

int numeric_cmp(const std::string& a, const std::string& b) {
  Dec x = parse_dec(a), y = parse_dec(b);
  if (x.rank != y.rank) return x.rank < y.rank ? -1 : 1;
  if (x.rank != 1) return 0;
  if (x.sign != y.sign) return x.sign < y.sign ? -1 : 1;
  if (x.sign == 0) return 0;
  int mag;
  if (x.int_part.size() != y.int_part.size()) {
    mag = x.int_part.size() < y.int_part.size() ? -1 : 1;
  } else {
    size_t n = std::max(x.frac_part.size(), y.frac_part.size());
    std::string fx = x.frac_part + std::string(n - x.frac_part.size(), '0');
    std::string fy = y.frac_part + std::string(n - y.frac_part.size(), '0');
    mag = sign((x.int_part + fx).compare(y.int_part + fy));
  }
  return x.sign * mag;
}

std::string random_numeric(std::mt19937_64& rng) {
  switch (rng() % 12) {
    case 0:
      return "NaN";
    case 1:
      return "Infinity";
    case 2:
      return "-Infinity";
    default:
      break;
  }
  // Few distinct digits and short lengths, so that near-equal values are common.
  static const char kDigits[] = "00019";
  std::string s;
  if (rng() % 2) s.push_back('-');
  size_t int_len = rng() % 5;
  if (rng() % 10 == 0) int_len = 20 + rng() % 30;
  std::string ip;
  for (size_t i = 0; i < int_len; ++i) ip.push_back(kDigits[rng() % 5]);
  ip.erase(0, std::min(ip.find_first_not_of('0'), ip.size()));
  s += ip.empty() ? "0" : ip;
  size_t frac_len = rng() % 6;
  if (rng() % 10 == 0) frac_len = 20 + rng() % 30;
  if (frac_len > 0) {
    s.push_back('.');
    for (size_t i = 0; i < frac_len; ++i) s.push_back(kDigits[rng() % 5]);
  }
  if (s == "-0" || (s.starts_with("-0.") && s.find_first_not_of("-0.") == std::string::npos))
    s.erase(0, 1);  // PostgreSQL prints no negative zero
  return s;
}

TEST(KeyCodec, Numeric) {
  std::mt19937_64 rng(4);
  std::vector<std::string> texts = {
      "0",    "0.000", "1",     "1.0", "10",      "0.1",
      "-0.1", "-10",   "99.99", "100", "0.00001", "123456789012345678901234567890.5"};
  for (int i = 0; i < kIterations * 2; ++i) texts.push_back(random_numeric(rng));
  check_order(KeyEncoding::kNumeric, texts, numeric_cmp);
  EXPECT_THROW(enc(KeyEncoding::kNumeric, "1e5"), Error);
  EXPECT_THROW(enc(KeyEncoding::kNumeric, "."), Error);
  EXPECT_THROW(enc(KeyEncoding::kNumeric, "1.2.3"), Error);
  EXPECT_THROW(enc(KeyEncoding::kNumeric, "nan"), Error);
}

std::string random_bytes(std::mt19937_64& rng, size_t max_len) {
  static const char kAlphabet[] = {'\0', '\x01', '\xff', 'a', 'b', ' ', '\t'};
  std::string s;
  size_t n = rng() % (max_len + 1);
  for (size_t i = 0; i < n; ++i) s.push_back(kAlphabet[rng() % sizeof(kAlphabet)]);
  return s;
}

TEST(KeyCodec, TextAndOther) {
  std::mt19937_64 rng(5);
  std::vector<std::string> texts;
  for (int i = 0; i < kIterations; ++i) texts.push_back(random_bytes(rng, 6));
  check_order(KeyEncoding::kText, texts,
              [](const std::string& a, const std::string& b) { return bytes_cmp(a, b); });
  check_order(KeyEncoding::kOther, texts,
              [](const std::string& a, const std::string& b) { return bytes_cmp(a, b); });
}

TEST(KeyCodec, Bpchar) {
  std::mt19937_64 rng(6);
  std::vector<std::string> texts;
  for (int i = 0; i < kIterations; ++i) {
    std::string s = random_bytes(rng, 4);
    s.append(rng() % 3, ' ');
    texts.push_back(s);
  }
  // bpchar compares without trailing spaces.
  check_order(KeyEncoding::kBpchar, texts, [](std::string a, std::string b) {
    while (!a.empty() && a.back() == ' ') a.pop_back();
    while (!b.empty() && b.back() == ' ') b.pop_back();
    return bytes_cmp(a, b);
  });
}

TEST(KeyCodec, Bytea) {
  std::mt19937_64 rng(7);
  std::vector<std::string> raw, texts;
  for (int i = 0; i < kIterations; ++i) {
    raw.push_back(random_bytes(rng, 5));
    std::string t;
    append_bytea_hex(t, raw.back());
    texts.push_back(t);
  }
  check_order(KeyEncoding::kBytea, texts, [](const std::string& a, const std::string& b) {
    return bytes_cmp(decode_bytea_hex(a), decode_bytea_hex(b));
  });
  EXPECT_THROW(enc(KeyEncoding::kBytea, "abc"), Error);
}

TEST(KeyCodec, Uuid) {
  std::mt19937_64 rng(8);
  std::vector<std::string> texts;
  for (int i = 0; i < kIterations; ++i) {
    std::string t;
    for (int b = 0; b < 16; ++b) {
      if (b == 4 || b == 6 || b == 8 || b == 10) t.push_back('-');
      unsigned v = static_cast<unsigned>(rng() % (i % 2 ? 256 : 2));  // some near-equal ones
      t.push_back("0123456789abcdef"[v >> 4]);
      t.push_back("0123456789abcdef"[v & 15]);
    }
    texts.push_back(t);
  }
  check_order(KeyEncoding::kUuid, texts,
              [](const std::string& a, const std::string& b) { return bytes_cmp(a, b); });
  const std::string canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
  for (const char* form :
       {"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        "a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11"})
    EXPECT_EQ(dec(KeyEncoding::kUuid, enc(KeyEncoding::kUuid, form)), canonical) << form;
  EXPECT_THROW(enc(KeyEncoding::kUuid, "a0eebc99"), Error);
  EXPECT_THROW(enc(KeyEncoding::kUuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g"), Error);
}

TEST(KeyCodec, Bool) {
  check_order(KeyEncoding::kBool, {"f", "t", "t", "f", "f"},
              [](const std::string& a, const std::string& b) { return bytes_cmp(a, b); });
  EXPECT_THROW(enc(KeyEncoding::kBool, "true"), Error);
}

// ---- dates and timestamps: texts built from random fields, ordered by those fields ----

struct Moment {
  int64_t year;  // astronomical: 0 is 1 BC
  int month, day, hour, minute, second, micro;
  bool infinite = false;
  int inf_sign = 0;
  auto tuple() const {
    return std::make_tuple(inf_sign, year, month, day, hour, minute, second, micro);
  }
};

int days_in(int64_t y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

Moment random_moment(std::mt19937_64& rng, bool with_time) {
  Moment m{};
  if (rng() % 40 == 0) {
    m.infinite = true;
    m.inf_sign = rng() % 2 ? 1 : -1;
    return m;
  }
  switch (rng() % 3) {
    case 0:
      m.year = static_cast<int64_t>(rng() % 10) - 3;
      break;  // around 1 BC / 1 AD
    case 1:
      m.year = 1990 + static_cast<int64_t>(rng() % 20);
      break;
    default:
      m.year = static_cast<int64_t>(rng() % (294275 + 4712)) - 4712;
      break;
  }
  m.month = 1 + static_cast<int>(rng() % 12);
  m.day = 1 + static_cast<int>(rng() % days_in(m.year, m.month));
  if (with_time) {
    m.hour = static_cast<int>(rng() % 24);
    m.minute = static_cast<int>(rng() % 60);
    m.second = static_cast<int>(rng() % 60);
    switch (rng() % 3) {
      case 0:
        m.micro = 0;
        break;
      case 1:
        m.micro = static_cast<int>(rng() % 10) * 100000;
        break;
      default:
        m.micro = static_cast<int>(rng() % 1000000);
        break;
    }
  }
  return m;
}

std::string pad(int64_t v, int width) {
  std::string s = std::to_string(v);
  return std::string(s.size() < size_t(width) ? width - s.size() : 0, '0') + s;
}

std::string moment_text(const Moment& m, bool with_time, bool tz) {
  if (m.infinite) return m.inf_sign > 0 ? "infinity" : "-infinity";
  bool bc = m.year <= 0;
  std::string s = pad(bc ? 1 - m.year : m.year, 4) + "-" + pad(m.month, 2) + "-" + pad(m.day, 2);
  if (with_time) {
    s += " " + pad(m.hour, 2) + ":" + pad(m.minute, 2) + ":" + pad(m.second, 2);
    if (m.micro) {
      std::string f = pad(m.micro, 6);
      while (f.back() == '0') f.pop_back();
      s += "." + f;
    }
    if (tz) s += "+00";
  }
  if (bc) s += " BC";
  return s;
}

void check_moments(KeyEncoding e, bool with_time, bool tz, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Moment> moments;
  std::vector<std::string> texts;
  for (int i = 0; i < kIterations; ++i) {
    moments.push_back(random_moment(rng, with_time));
    texts.push_back(moment_text(moments.back(), with_time, tz));
  }
  std::vector<std::string> keys;
  for (const auto& t : texts) {
    keys.push_back(enc(e, t));
    ASSERT_EQ(dec(e, keys.back()), t);
  }
  for (size_t i = 0; i < moments.size(); ++i) {
    for (size_t j : {i + 1, i + 7}) {
      if (j >= moments.size()) continue;
      auto a = moments[i].tuple(), b = moments[j].tuple();
      int want = (a > b) - (a < b);
      ASSERT_EQ(bytes_cmp(keys[i], keys[j]), want) << texts[i] << " vs " << texts[j];
    }
  }
}

TEST(KeyCodec, Date) { check_moments(KeyEncoding::kDate, false, false, 9); }
TEST(KeyCodec, Timestamp) { check_moments(KeyEncoding::kTimestamp, true, false, 10); }
TEST(KeyCodec, Timestamptz) { check_moments(KeyEncoding::kTimestamptz, true, true, 11); }

TEST(KeyCodec, TimestampForms) {
  // Another offset is the same instant; it decodes to the UTC text.
  EXPECT_EQ(enc(KeyEncoding::kTimestamptz, "2024-01-01 02:30:00+02:30"),
            enc(KeyEncoding::kTimestamptz, "2024-01-01 00:00:00+00"));
  EXPECT_EQ(
      dec(KeyEncoding::kTimestamptz, enc(KeyEncoding::kTimestamptz, "2024-01-01 01:00:00-01")),
      "2024-01-01 02:00:00+00");
  EXPECT_EQ(dec(KeyEncoding::kTimestamp, enc(KeyEncoding::kTimestamp, "2024-02-29T10:00:00.5")),
            "2024-02-29 10:00:00.5");
  EXPECT_EQ(dec(KeyEncoding::kDate, enc(KeyEncoding::kDate, "4714-11-24 BC")), "4714-11-24 BC");
  EXPECT_EQ(dec(KeyEncoding::kDate, enc(KeyEncoding::kDate, "5874897-12-31")), "5874897-12-31");
  EXPECT_LT(enc(KeyEncoding::kDate, "0001-12-31 BC"), enc(KeyEncoding::kDate, "0001-01-01"));
  for (const char* bad : {"2023-02-29", "2024-13-01", "24-01-01", "2024-01-01 x", "0000-01-01"})
    EXPECT_THROW(enc(KeyEncoding::kDate, bad), Error) << bad;
  for (const char* bad : {"2024-01-01 24:00:00", "2024-01-01 10:00", "2024-01-01 10:00:00.1234567",
                          "9999999-01-01 00:00:00"})
    EXPECT_THROW(enc(KeyEncoding::kTimestamp, bad), Error) << bad;
  EXPECT_THROW(enc(KeyEncoding::kTimestamptz, "2024-01-01 10:00:00"), Error);
}

// ---- composite keys, NULLs, KeyCodec over a TableDef ----

TEST(KeyCodec, CompositeOrderIsLexicographic) {
  std::mt19937_64 rng(12);
  const KeyEncoding encs[] = {KeyEncoding::kNumeric, KeyEncoding::kText, KeyEncoding::kInt4};
  struct K {
    std::string num, text, i;
    std::string key;
  };
  std::vector<K> ks;
  for (int n = 0; n < kIterations; ++n) {
    K k{random_numeric(rng),
        random_bytes(rng, 3),
        std::to_string(static_cast<int>(rng() % 5) - 2),
        {}};
    Datum d[] = {Datum::of(k.num), Datum::of(k.text), Datum::of(k.i)};
    append_key_fields(k.key, encs, d, false);
    std::string_view in = k.key;
    auto back = read_key_fields(in, encs);
    ASSERT_TRUE(in.empty());
    ASSERT_EQ(back[0], k.num);
    ASSERT_EQ(back[1], k.text);
    ASSERT_EQ(back[2], k.i);
    ks.push_back(std::move(k));
  }
  auto cmp = [](const K& a, const K& b) {
    if (int c = numeric_cmp(a.num, b.num)) return c;
    if (int c = bytes_cmp(a.text, b.text)) return c;
    return sign(std::stoi(a.i) - std::stoi(b.i));
  };
  for (size_t i = 0; i + 1 < ks.size(); ++i) {
    int want = cmp(ks[i], ks[i + 1]);
    bool same_text =
        ks[i].num == ks[i + 1].num && ks[i].text == ks[i + 1].text && ks[i].i == ks[i + 1].i;
    if (want != 0)
      ASSERT_EQ(bytes_cmp(ks[i].key, ks[i + 1].key), want)
          << ks[i].num << "," << ks[i].text << " vs " << ks[i + 1].num << "," << ks[i + 1].text;
    else
      ASSERT_EQ(ks[i].key == ks[i + 1].key, same_text);
  }
  // Equal values with different display (1.50 vs 1.5) do not decide before the next column.
  std::string a, b;
  Datum da[] = {Datum::of("1.50"), Datum::of("a"), Datum::of("0")};
  Datum db[] = {Datum::of("1.5"), Datum::of("b"), Datum::of("0")};
  append_key_fields(a, encs, da, false);
  append_key_fields(b, encs, db, false);
  EXPECT_LT(a, b);
}

TEST(KeyCodec, NullsSortLastAndNeedPermission) {
  const KeyEncoding encs[] = {KeyEncoding::kInt4, KeyEncoding::kText};
  Datum with_null[] = {Datum::null(), Datum::of("x")};
  Datum with_value[] = {Datum::of("2147483647"), Datum::of("x")};
  std::string k1, k2;
  EXPECT_THROW(append_key_fields(k1, encs, with_null, false), Error);
  k1.clear();
  append_key_fields(k1, encs, with_null, true);
  append_key_fields(k2, encs, with_value, true);
  EXPECT_GT(k1, k2);
  std::string_view in = k1;
  auto back = read_key_fields(in, encs);
  EXPECT_FALSE(back[0].has_value());
  EXPECT_EQ(back[1], "x");
  Datum unchanged[] = {Datum::unchanged(), Datum::of("x")};
  std::string k3;
  EXPECT_THROW(append_key_fields(k3, encs, unchanged, true), Error);
}

ColumnDef col(std::string name, uint32_t oid, int key_position = 0) {
  ColumnDef c;
  c.name = std::move(name);
  c.type_oid = oid;
  c.base_type_oid = oid;
  c.storage = storage_class_for_type(oid);
  c.key_position = key_position;
  return c;
}

TEST(KeyCodec, TableDefKeyColumnsAndPrefix) {
  TableDef def;
  def.id = 7;
  def.columns = {col("payload", 25), col("b", 25, 2), col("a", 23, 1)};
  KeyCodec codec(def);
  EXPECT_TRUE(codec.keyed());
  ASSERT_EQ(codec.columns(), (std::vector<size_t>{2, 1}));
  Datum row[] = {Datum::of("ignored"), Datum::of("bee"), Datum::of("5")};
  std::string key = codec.encode(row);
  EXPECT_EQ(key.substr(0, 4), std::string("\0\0\0\x07", 4));
  auto back = codec.decode(key);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0], "5");
  EXPECT_EQ(back[1], "bee");
  EXPECT_LT(KeyCodec::table_prefix(7), key);
  EXPECT_LT(key, KeyCodec::table_prefix(8));
  Datum null_key[] = {Datum::of("x"), Datum::of("bee"), Datum::null()};
  EXPECT_THROW(codec.encode(null_key), Error);

  TableDef other = def;
  other.id = 8;
  EXPECT_THROW(KeyCodec(other).decode(key), Error);

  // A domain over int8 (unknown oid): its base type decides.
  ColumnDef domain = col("d", 99999, 1);
  domain.base_type_oid = 20;
  EXPECT_EQ(key_encoding_for(domain), KeyEncoding::kInt8);
  domain.base_type_oid = 0;
  domain.storage = StorageClass::kText;
  EXPECT_EQ(key_encoding_for(domain), KeyEncoding::kOther);

  // Without a key, every column is in the key and NULLs are allowed.
  TableDef full = def;
  for (auto& c : full.columns) c.key_position = 0;
  KeyCodec all(full);
  EXPECT_FALSE(all.keyed());
  Datum r[] = {Datum::null(), Datum::of("b"), Datum::of("1")};
  std::string k = all.encode(r) + std::string("\0\0\0\0\0\0\0\x05", 8);
  std::string_view rest;
  auto vals = all.decode(k, &rest);
  EXPECT_FALSE(vals[0].has_value());
  EXPECT_EQ(rest.size(), 8u);
}

TEST(KeyCodec, CorruptKeysAreStoreErrors) {
  std::string k = enc(KeyEncoding::kNumeric, "123.45");
  const KeyEncoding e = KeyEncoding::kNumeric;
  for (size_t n = 0; n < k.size(); ++n) {
    std::string_view in(k.data(), n);
    try {
      read_key_fields(in, std::span<const KeyEncoding>(&e, 1));
      ADD_FAILURE() << "truncated key of " << n << " bytes decoded";
    } catch (const Error& err) {
      EXPECT_EQ(err.category(), ErrorCategory::kStore);
    }
  }
  std::string bad(
      "\x01"
      "a\0\x07",
      4);
  std::string_view in = bad;
  const KeyEncoding t = KeyEncoding::kText;
  EXPECT_THROW(read_key_fields(in, std::span<const KeyEncoding>(&t, 1)), Error);
}

}  // namespace
}  // namespace pgseed
