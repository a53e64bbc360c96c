#include "store/key_codec.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "decode/byte_reader.h"
#include "pgseed/error.h"
#include "store/row_codec.h"
#include "store/value_codec.h"

namespace pgseed {

namespace {

constexpr uint32_t kNameOid = 19;
constexpr uint32_t kTextOid = 25;
constexpr uint32_t kBpcharOid = 1042;
constexpr uint32_t kVarcharOid = 1043;
constexpr uint32_t kDateOid = 1082;
constexpr uint32_t kTimestampOid = 1114;
constexpr uint32_t kTimestamptzOid = 1184;
constexpr uint32_t kNumericOid = 1700;
constexpr uint32_t kUuidOid = 2950;

constexpr uint8_t kMarkValue = 0x01;
constexpr uint8_t kMarkNull = 0x02;

constexpr uint64_t kSignBit = uint64_t{1} << 63;
constexpr uint64_t kCanonicalNan = 0x7FF8000000000000ULL;

// Numeric classes, in PostgreSQL's order.
constexpr uint8_t kNumNegInf = 1, kNumNeg = 2, kNumZero = 3, kNumPos = 4, kNumPosInf = 5,
                  kNumNan = 6;

constexpr int64_t kMicrosPerDay = 86'400'000'000LL;

[[noreturn]] void invalid(KeyEncoding enc, std::string_view text);

const char* encoding_name(KeyEncoding e) {
  switch (e) {
    case KeyEncoding::kInt2:
      return "int2";
    case KeyEncoding::kInt4:
      return "int4";
    case KeyEncoding::kInt8:
      return "int8";
    case KeyEncoding::kOid:
      return "oid";
    case KeyEncoding::kFloat4:
      return "float4";
    case KeyEncoding::kFloat8:
      return "float8";
    case KeyEncoding::kBool:
      return "bool";
    case KeyEncoding::kText:
      return "text";
    case KeyEncoding::kBpchar:
      return "bpchar";
    case KeyEncoding::kBytea:
      return "bytea";
    case KeyEncoding::kUuid:
      return "uuid";
    case KeyEncoding::kNumeric:
      return "numeric";
    case KeyEncoding::kDate:
      return "date";
    case KeyEncoding::kTimestamp:
      return "timestamp";
    case KeyEncoding::kTimestamptz:
      return "timestamptz";
    case KeyEncoding::kOther:
      return "text form";
  }
  return "?";
}

void invalid(KeyEncoding enc, std::string_view text) {
  std::string shown(text.substr(0, 64));
  throw Error(ErrorCategory::kDecode, std::string("invalid ") + encoding_name(enc) +
                                          " key value '" + shown +
                                          (text.size() > 64 ? "...'" : "'"));
}

[[noreturn]] void corrupt(const std::string& what) { throw Error(ErrorCategory::kDecode, what); }

void put_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void append_escaped(std::string& out, std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    const void* z = std::memchr(s.data() + pos, 0, s.size() - pos);
    size_t end = z ? static_cast<size_t>(static_cast<const char*>(z) - s.data()) : s.size();
    out.append(s.data() + pos, end - pos);
    if (end == s.size()) break;
    out.push_back('\0');
    out.push_back('\xFF');
    pos = end + 1;
  }
  out.push_back('\0');
  out.push_back('\x01');
}

std::string read_escaped(ByteReader& in) {
  std::string s;
  for (;;) {
    uint8_t b = in.read_u8("escaped bytes");
    if (b != 0) {
      s.push_back(static_cast<char>(b));
      continue;
    }
    uint8_t next = in.read_u8("escape");
    if (next == 0x01) return s;
    if (next != 0xFF) corrupt("bad escape byte " + std::to_string(next) + " in a key");
    s.push_back('\0');
  }
}

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, res.ptr);
}

int64_t parse_int_in(std::string_view t, int64_t lo, int64_t hi, KeyEncoding enc) {
  int64_t v = 0;
  if (!parse_int64(t, v) || v < lo || v > hi) invalid(enc, t);
  return v;
}

// ---- floats ----

double parse_float_key(std::string_view t, KeyEncoding enc) {
  double v = 0;
  if (t == "NaN") {
    v = std::numeric_limits<double>::quiet_NaN();
  } else if (t == "Infinity") {
    v = std::numeric_limits<double>::infinity();
  } else if (t == "-Infinity") {
    v = -std::numeric_limits<double>::infinity();
  } else if (t == "-0") {
    v = -0.0;
  } else if (auto p = parse_float_exact(t)) {
    v = *p;
  } else {
    invalid(enc, t);
  }
  if (enc == KeyEncoding::kFloat4) v = static_cast<double>(static_cast<float>(v));
  return v;
}

uint64_t float_order_bits(double v) {
  uint64_t bits = std::isnan(v) ? kCanonicalNan : std::bit_cast<uint64_t>(v);
  return (bits & kSignBit) ? ~bits : bits ^ kSignBit;
}

double float_from_order_bits(uint64_t u) {
  uint64_t bits = (u & kSignBit) ? u ^ kSignBit : ~u;
  return std::bit_cast<double>(bits);
}

// ---- numeric ----

struct Decimal {
  uint8_t cls = kNumZero;
  std::string digits;    // significant digits, no leading or trailing zeros
  int64_t exponent = 0;  // value = 0.digits x 10^exponent
  uint64_t dscale = 0;   // digits after the decimal point in the text
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

Decimal parse_numeric(std::string_view t) {
  Decimal d;
  if (t == "NaN") {
    d.cls = kNumNan;
    return d;
  }
  if (t == "Infinity") {
    d.cls = kNumPosInf;
    return d;
  }
  if (t == "-Infinity") {
    d.cls = kNumNegInf;
    return d;
  }
  size_t i = 0;
  bool negative = false;
  if (i < t.size() && (t[i] == '-' || t[i] == '+')) negative = t[i++] == '-';
  size_t int_begin = i;
  while (i < t.size() && is_digit(t[i])) ++i;
  size_t int_len = i - int_begin;
  size_t frac_begin = i, frac_len = 0;
  if (i < t.size() && t[i] == '.') {
    frac_begin = ++i;
    while (i < t.size() && is_digit(t[i])) ++i;
    frac_len = i - frac_begin;
  }
  if (i != t.size() || int_len + frac_len == 0) invalid(KeyEncoding::kNumeric, t);
  d.dscale = frac_len;
  std::string all;
  all.reserve(int_len + frac_len);
  all.append(t.substr(int_begin, int_len));
  all.append(t.substr(frac_begin, frac_len));
  size_t first = all.find_first_not_of('0');
  if (first == std::string::npos) {
    d.cls = kNumZero;
    return d;
  }
  size_t last = all.find_last_not_of('0');
  d.digits = all.substr(first, last - first + 1);
  d.exponent = static_cast<int64_t>(int_len) - static_cast<int64_t>(first);
  if (d.exponent > std::numeric_limits<int32_t>::max() - 1 ||
      d.exponent < std::numeric_limits<int32_t>::min() + 1)
    invalid(KeyEncoding::kNumeric, t);
  d.cls = negative ? kNumNeg : kNumPos;
  return d;
}

void append_numeric(std::string& out, std::string& tie, std::string_view t) {
  Decimal d = parse_numeric(t);
  out.push_back(static_cast<char>(d.cls));
  if (d.cls == kNumNan || d.cls == kNumPosInf || d.cls == kNumNegInf) return;
  if (d.cls != kNumZero) {
    const bool neg = d.cls == kNumNeg;
    const uint8_t flip = neg ? 0xFF : 0x00;
    int32_t e = static_cast<int32_t>(neg ? -d.exponent : d.exponent);
    put_be(out, static_cast<uint32_t>(e) ^ 0x80000000u, 4);
    for (size_t i = 0; i < d.digits.size(); i += 2) {
      int a = d.digits[i] - '0';
      int b = i + 1 < d.digits.size() ? d.digits[i + 1] - '0' : 0;
      out.push_back(static_cast<char>(static_cast<uint8_t>(1 + 10 * a + b) ^ flip));
    }
    out.push_back(static_cast<char>(flip));
  }
  append_varint(tie, d.dscale);
}

// Reads a numeric's order part; the text is completed by numeric_text once the tie
// suffix (its display scale) is known.
Decimal read_numeric(ByteReader& in) {
  Decimal d;
  d.cls = in.read_u8("numeric class");
  if (d.cls < kNumNegInf || d.cls > kNumNan) corrupt("bad numeric class in a key");
  if (d.cls != kNumPos && d.cls != kNumNeg) return d;
  const bool neg = d.cls == kNumNeg;
  const uint8_t flip = neg ? 0xFF : 0x00;
  int32_t e = static_cast<int32_t>(in.read_u32("numeric exponent") ^ 0x80000000u);
  d.exponent = neg ? -int64_t{e} : int64_t{e};
  for (;;) {
    uint8_t b = in.read_u8("numeric digits") ^ flip;
    if (b == 0) break;
    if (b > 100) corrupt("bad numeric digit pair in a key");
    d.digits.push_back(static_cast<char>('0' + (b - 1) / 10));
    d.digits.push_back(static_cast<char>('0' + (b - 1) % 10));
  }
  if (!d.digits.empty() && d.digits.back() == '0') d.digits.pop_back();  // padding
  if (d.digits.empty() || d.digits.back() == '0' || d.digits.front() == '0')
    corrupt("bad numeric digits in a key");
  return d;
}

std::string numeric_text(const Decimal& d) {
  switch (d.cls) {
    case kNumNan:
      return "NaN";
    case kNumPosInf:
      return "Infinity";
    case kNumNegInf:
      return "-Infinity";
    default:
      break;
  }
  std::string s;
  if (d.cls == kNumNeg) s.push_back('-');
  const int64_t n = static_cast<int64_t>(d.digits.size());
  if (d.cls == kNumZero || d.exponent <= 0) {
    s.push_back('0');
  } else {
    s.append(d.digits, 0, static_cast<size_t>(std::min(n, d.exponent)));
    if (d.exponent > n) s.append(static_cast<size_t>(d.exponent - n), '0');
  }
  if (d.dscale == 0) return s;
  s.push_back('.');
  std::string frac;
  if (d.cls != kNumZero) {
    if (d.exponent < 0) frac.append(static_cast<size_t>(-d.exponent), '0');
    if (d.exponent < n)
      frac.append(d.digits, static_cast<size_t>(std::max<int64_t>(d.exponent, 0)));
  }
  if (frac.size() > d.dscale) corrupt("numeric display scale below its digits in a key");
  frac.append(d.dscale - frac.size(), '0');
  s += frac;
  return s;
}

// ---- dates and timestamps ----

// Days from 1970-01-01 of a proleptic Gregorian date; `y` astronomical (1 BC = 0).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void civil_from_days(int64_t z, int64_t& y, int64_t& m, int64_t& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = yoe + era * 400 + (m <= 2);
}

constexpr int64_t kDaysTo2000 = 10957;  // 1970-01-01 .. 2000-01-01
constexpr int64_t kMaxTimestampDays = std::numeric_limits<int64_t>::max() / kMicrosPerDay - 1;

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int64_t days_in_month(int64_t y, int64_t m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

class TextCursor {
 public:
  explicit TextCursor(std::string_view t) : t_(t) {}
  bool at_end() const { return pos_ == t_.size(); }
  bool eat(char c) {
    if (pos_ < t_.size() && t_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool eat(std::string_view s) {
    if (t_.substr(pos_).starts_with(s)) {
      pos_ += s.size();
      return true;
    }
    return false;
  }
  // Exactly `min`..`max` digits; false if fewer.
  bool digits(size_t min, size_t max, int64_t& v, size_t* count = nullptr) {
    size_t n = 0;
    v = 0;
    while (n < max && pos_ < t_.size() && is_digit(t_[pos_])) {
      v = v * 10 + (t_[pos_++] - '0');
      ++n;
    }
    if (count) *count = n;
    return n >= min;
  }
  char peek() const { return pos_ < t_.size() ? t_[pos_] : '\0'; }

 private:
  std::string_view t_;
  size_t pos_ = 0;
};

// Parses "YYYY-MM-DD" (4 to 7 year digits; the year as written, before any " BC").
bool parse_ymd(TextCursor& c, int64_t& year, int64_t& month, int64_t& day) {
  return c.digits(4, 7, year) && c.eat('-') && c.digits(2, 2, month) && c.eat('-') &&
         c.digits(2, 2, day) && year >= 1 && month >= 1 && month <= 12 && day >= 1;
}

int64_t to_days(int64_t year, bool bc, int64_t month, int64_t day, bool& ok) {
  int64_t y = bc ? 1 - year : year;
  ok = ok && day <= days_in_month(y, month);
  return days_from_civil(y, month, day) - kDaysTo2000;
}

int64_t parse_date(std::string_view t) {
  if (t == "infinity") return std::numeric_limits<int64_t>::max();
  if (t == "-infinity") return std::numeric_limits<int64_t>::min();
  TextCursor c(t);
  int64_t y = 0, m = 0, d = 0;
  bool ok = parse_ymd(c, y, m, d);
  bool bc = ok && c.eat(" BC");
  ok = ok && c.at_end();
  int64_t days = ok ? to_days(y, bc, m, d, ok) : 0;
  if (!ok) invalid(KeyEncoding::kDate, t);
  return days;
}

int64_t parse_timestamp(std::string_view t, bool with_tz) {
  const KeyEncoding enc = with_tz ? KeyEncoding::kTimestamptz : KeyEncoding::kTimestamp;
  if (t == "infinity") return std::numeric_limits<int64_t>::max();
  if (t == "-infinity") return std::numeric_limits<int64_t>::min();
  TextCursor c(t);
  int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, frac = 0;
  size_t frac_digits = 0;
  bool ok = parse_ymd(c, y, mo, d) && (c.eat(' ') || c.eat('T')) && c.digits(2, 2, h) &&
            c.eat(':') && c.digits(2, 2, mi) && c.eat(':') && c.digits(2, 2, s) && h < 24 &&
            mi < 60 && s < 60;
  if (ok && c.eat('.')) ok = c.digits(1, 6, frac, &frac_digits) && !is_digit(c.peek());
  for (size_t i = frac_digits; i < 6; ++i) frac *= 10;
  int64_t offset_seconds = 0;
  if (ok && with_tz) {
    char sign = c.peek();
    int64_t oh = 0, om = 0, os = 0;
    ok = (c.eat('+') || c.eat('-')) && c.digits(2, 2, oh);
    if (ok && c.eat(':')) {
      ok = c.digits(2, 2, om);
      if (ok && c.eat(':')) ok = c.digits(2, 2, os);
    }
    offset_seconds = (oh * 3600 + om * 60 + os) * (sign == '-' ? -1 : 1);
  }
  bool bc = ok && c.eat(" BC");
  ok = ok && c.at_end();
  int64_t days = ok ? to_days(y, bc, mo, d, ok) : 0;
  // PostgreSQL's timestamps end in 294276 AD; beyond this the microseconds overflow int64.
  ok = ok && days > -kMaxTimestampDays && days < kMaxTimestampDays;
  if (!ok) invalid(enc, t);
  // Local time minus the offset is UTC.
  return days * kMicrosPerDay + ((h * 60 + mi) * 60 + s - offset_seconds) * 1'000'000 + frac;
}

void append_padded(std::string& out, int64_t v, int width) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  for (int n = static_cast<int>(res.ptr - buf); n < width; ++n) out.push_back('0');
  out.append(buf, res.ptr);
}

// "YYYY-MM-DD" of days since 2000-01-01; returns whether the year is BC.
bool append_ymd(std::string& out, int64_t days) {
  int64_t y = 0, m = 0, d = 0;
  civil_from_days(days + kDaysTo2000, y, m, d);
  bool bc = y <= 0;
  append_padded(out, bc ? 1 - y : y, 4);
  out.push_back('-');
  append_padded(out, m, 2);
  out.push_back('-');
  append_padded(out, d, 2);
  return bc;
}

std::string date_text(int64_t days) {
  if (days == std::numeric_limits<int64_t>::max()) return "infinity";
  if (days == std::numeric_limits<int64_t>::min()) return "-infinity";
  std::string s;
  if (append_ymd(s, days)) s += " BC";
  return s;
}

std::string timestamp_text(int64_t micros, bool with_tz) {
  if (micros == std::numeric_limits<int64_t>::max()) return "infinity";
  if (micros == std::numeric_limits<int64_t>::min()) return "-infinity";
  int64_t days = micros / kMicrosPerDay;
  int64_t rem = micros % kMicrosPerDay;
  if (rem < 0) {
    rem += kMicrosPerDay;
    --days;
  }
  std::string s;
  bool bc = append_ymd(s, days);
  int64_t secs = rem / 1'000'000, frac = rem % 1'000'000;
  s.push_back(' ');
  append_padded(s, secs / 3600, 2);
  s.push_back(':');
  append_padded(s, secs / 60 % 60, 2);
  s.push_back(':');
  append_padded(s, secs % 60, 2);
  if (frac != 0) {
    int width = 6;
    while (frac % 10 == 0) {
      frac /= 10;
      --width;
    }
    s.push_back('.');
    append_padded(s, frac, width);
  }
  if (with_tz) s += "+00";
  if (bc) s += " BC";
  return s;
}

// ---- uuid ----

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// PostgreSQL's input forms: 32 hex digits, optionally in braces, with a '-' allowed after
// any group of four.
void append_uuid(std::string& out, std::string_view t) {
  std::string_view s = t;
  if (s.size() >= 2 && s.front() == '{' && s.back() == '}') s = s.substr(1, s.size() - 2);
  size_t i = 0;
  std::string bytes;
  for (int n = 0; n < 16; ++n) {
    if (n > 0 && n % 2 == 0 && i < s.size() && s[i] == '-') ++i;
    int hi = i < s.size() ? hex_value(s[i]) : -1;
    int lo = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
    if (hi < 0 || lo < 0) invalid(KeyEncoding::kUuid, t);
    bytes.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  if (i != s.size()) invalid(KeyEncoding::kUuid, t);
  out += bytes;
}

std::string uuid_text(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    auto b = static_cast<uint8_t>(bytes[i]);
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

// ---- one field ----

void append_field(std::string& out, std::string& tie, KeyEncoding enc, const Datum& v,
                  bool allow_null) {
  if (v.kind == Datum::Kind::kNull) {
    if (!allow_null)
      throw Error(ErrorCategory::kDecode,
                  std::string("NULL in a key column (") + encoding_name(enc) + ")");
    out.push_back(static_cast<char>(kMarkNull));
    return;
  }
  if (v.kind == Datum::Kind::kUnchanged)
    throw Error(ErrorCategory::kDecode,
                "a key column holds an unchanged TOAST value, and no old key was sent");
  out.push_back(static_cast<char>(kMarkValue));
  std::string_view t = v.text;
  switch (enc) {
    case KeyEncoding::kInt2:
      put_be(out, static_cast<uint64_t>(parse_int_in(t, INT16_MIN, INT16_MAX, enc)) ^ 0x8000, 2);
      return;
    case KeyEncoding::kInt4:
      put_be(out, static_cast<uint64_t>(parse_int_in(t, INT32_MIN, INT32_MAX, enc)) ^ 0x80000000,
             4);
      return;
    case KeyEncoding::kInt8:
      put_be(out, static_cast<uint64_t>(parse_int_in(t, INT64_MIN, INT64_MAX, enc)) ^ kSignBit, 8);
      return;
    case KeyEncoding::kOid:
      put_be(out, static_cast<uint64_t>(parse_int_in(t, 0, UINT32_MAX, enc)), 4);
      return;
    case KeyEncoding::kFloat4:
    case KeyEncoding::kFloat8: {
      double d = parse_float_key(t, enc);
      if (d == 0) {
        tie.push_back(std::signbit(d) ? '\x01' : '\x00');
        d = 0.0;  // -0 = 0 in PostgreSQL: the sign only goes to the tie suffix
      }
      put_be(out, float_order_bits(d), 8);
      return;
    }
    case KeyEncoding::kBool: {
      bool b = false;
      if (!parse_bool(t, b)) invalid(enc, t);
      out.push_back(b ? '\x01' : '\x00');
      return;
    }
    case KeyEncoding::kText:
    case KeyEncoding::kOther:
      append_escaped(out, t);
      return;
    case KeyEncoding::kBpchar: {
      size_t end = t.find_last_not_of(' ');
      size_t len = end == std::string_view::npos ? 0 : end + 1;
      append_escaped(out, t.substr(0, len));
      append_varint(tie, t.size() - len);
      return;
    }
    case KeyEncoding::kBytea:
      append_escaped(out, decode_bytea_hex(t));
      return;
    case KeyEncoding::kUuid:
      append_uuid(out, t);
      return;
    case KeyEncoding::kNumeric:
      append_numeric(out, tie, t);
      return;
    case KeyEncoding::kDate:
      put_be(out, static_cast<uint64_t>(parse_date(t)) ^ kSignBit, 8);
      return;
    case KeyEncoding::kTimestamp:
    case KeyEncoding::kTimestamptz:
      put_be(out,
             static_cast<uint64_t>(parse_timestamp(t, enc == KeyEncoding::kTimestamptz)) ^ kSignBit,
             8);
      return;
  }
}

// A field's order part as read, before the tie suffix completes it.
struct PendingField {
  bool null = false;
  std::string text;  // final text, or the bpchar's stripped text
  double real = 0;   // floats
  Decimal num;       // numerics
};

template <typename Values>
void append_fields(std::string& out, std::span<const KeyEncoding> encodings, const Values& value,
                   bool allow_null) {
  std::string tie;
  for (size_t i = 0; i < encodings.size(); ++i)
    append_field(out, tie, encodings[i], value(i), allow_null);
  out += tie;
}

}  // namespace

KeyEncoding key_encoding_for(const ColumnDef& column) {
  uint32_t oid = column.base_type_oid != 0 ? column.base_type_oid : column.type_oid;
  switch (oid) {
    case kInt2Oid:
      return KeyEncoding::kInt2;
    case kInt4Oid:
      return KeyEncoding::kInt4;
    case kInt8Oid:
      return KeyEncoding::kInt8;
    case kOidOid:
      return KeyEncoding::kOid;
    case kFloat4Oid:
      return KeyEncoding::kFloat4;
    case kFloat8Oid:
      return KeyEncoding::kFloat8;
    case kBoolOid:
      return KeyEncoding::kBool;
    case kByteaOid:
      return KeyEncoding::kBytea;
    case kTextOid:
    case kVarcharOid:
    case kNameOid:
      return KeyEncoding::kText;
    case kBpcharOid:
      return KeyEncoding::kBpchar;
    case kUuidOid:
      return KeyEncoding::kUuid;
    case kNumericOid:
      return KeyEncoding::kNumeric;
    case kDateOid:
      return KeyEncoding::kDate;
    case kTimestampOid:
      return KeyEncoding::kTimestamp;
    case kTimestamptzOid:
      return KeyEncoding::kTimestamptz;
    default:
      break;
  }
  switch (column.storage) {
    case StorageClass::kInteger:
      return KeyEncoding::kInt8;
    case StorageClass::kBool:
      return KeyEncoding::kBool;
    case StorageClass::kBytes:
      return KeyEncoding::kBytea;
    case StorageClass::kReal:  // float4 or float8 unknown: the text keeps it lossless
    case StorageClass::kText:
      break;
  }
  return KeyEncoding::kOther;
}

void append_key_fields(std::string& out, std::span<const KeyEncoding> encodings,
                       std::span<const Datum> values, bool allow_null) {
  if (encodings.size() != values.size())
    throw Error(ErrorCategory::kInternal, "key has " + std::to_string(values.size()) +
                                              " values for " + std::to_string(encodings.size()) +
                                              " columns");
  append_fields(
      out, encodings, [&](size_t i) -> const Datum& { return values[i]; }, allow_null);
}

std::vector<std::optional<std::string>> read_key_fields(std::string_view& in,
                                                        std::span<const KeyEncoding> encodings) {
  ByteReader r({reinterpret_cast<const uint8_t*>(in.data()), in.size()}, "key");
  std::vector<PendingField> fields(encodings.size());
  std::vector<std::optional<std::string>> result(encodings.size());
  try {
    for (size_t i = 0; i < encodings.size(); ++i) {
      PendingField& f = fields[i];
      uint8_t mark = r.read_u8("field marker");
      if (mark == kMarkNull) {
        f.null = true;
        continue;
      }
      if (mark != kMarkValue) corrupt("bad field marker " + std::to_string(mark) + " in a key");
      switch (encodings[i]) {
        case KeyEncoding::kInt2:
          append_int(f.text, static_cast<int16_t>(r.read_u16() ^ 0x8000));
          break;
        case KeyEncoding::kInt4:
          append_int(f.text, static_cast<int32_t>(r.read_u32() ^ 0x80000000u));
          break;
        case KeyEncoding::kInt8:
          append_int(f.text, static_cast<int64_t>(r.read_u64() ^ kSignBit));
          break;
        case KeyEncoding::kOid:
          append_int(f.text, r.read_u32());
          break;
        case KeyEncoding::kFloat4:
        case KeyEncoding::kFloat8:
          f.real = float_from_order_bits(r.read_u64("float"));
          break;
        case KeyEncoding::kBool: {
          uint8_t b = r.read_u8("bool");
          if (b > 1) corrupt("bad bool in a key");
          f.text = b ? "t" : "f";
          break;
        }
        case KeyEncoding::kText:
        case KeyEncoding::kOther:
        case KeyEncoding::kBpchar:
          f.text = read_escaped(r);
          break;
        case KeyEncoding::kBytea:
          append_bytea_hex(f.text, read_escaped(r));
          break;
        case KeyEncoding::kUuid:
          f.text = uuid_text(r.read_text(16, "uuid"));
          break;
        case KeyEncoding::kNumeric:
          f.num = read_numeric(r);
          break;
        case KeyEncoding::kDate:
          f.text = date_text(static_cast<int64_t>(r.read_u64("date") ^ kSignBit));
          break;
        case KeyEncoding::kTimestamp:
        case KeyEncoding::kTimestamptz:
          f.text = timestamp_text(static_cast<int64_t>(r.read_u64("timestamp") ^ kSignBit),
                                  encodings[i] == KeyEncoding::kTimestamptz);
          break;
      }
    }
    // The tie suffix, in field order.
    for (size_t i = 0; i < encodings.size(); ++i) {
      PendingField& f = fields[i];
      if (f.null) continue;
      switch (encodings[i]) {
        case KeyEncoding::kFloat4:
        case KeyEncoding::kFloat8: {
          double d = f.real;
          if (d == 0) {
            uint8_t neg = r.read_u8("float zero sign");
            if (neg > 1) corrupt("bad float zero sign in a key");
            d = neg ? -0.0 : 0.0;
          }
          f.text = encodings[i] == KeyEncoding::kFloat4 ? format_float4(static_cast<float>(d))
                                                        : format_float8(d);
          break;
        }
        case KeyEncoding::kBpchar: {
          uint64_t spaces = read_varint(r, "bpchar padding");
          if (spaces > (uint64_t{1} << 30)) corrupt("bad bpchar padding in a key");
          f.text.append(static_cast<size_t>(spaces), ' ');
          break;
        }
        case KeyEncoding::kNumeric:
          if (f.num.cls == kNumPos || f.num.cls == kNumNeg || f.num.cls == kNumZero) {
            f.num.dscale = read_varint(r, "numeric scale");
            if (f.num.dscale > (uint64_t{1} << 30)) corrupt("bad numeric scale in a key");
          }
          f.text = numeric_text(f.num);
          break;
        default:
          break;
      }
      result[i] = std::move(f.text);
    }
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::kDecode) throw;
    throw Error(ErrorCategory::kStore, std::string("corrupt key in the store: ") + e.what());
  }
  in.remove_prefix(r.position());
  return result;
}

KeyCodec::KeyCodec(const TableDef& def) : table_id_(def.id), keyed_(def.has_key()) {
  for (size_t i = 0; i < def.columns.size(); ++i)
    if (!keyed_ || def.columns[i].key_position > 0) columns_.push_back(i);
  if (keyed_)
    std::stable_sort(columns_.begin(), columns_.end(), [&](size_t a, size_t b) {
      return def.columns[a].key_position < def.columns[b].key_position;
    });
  for (size_t i : columns_) encodings_.push_back(key_encoding_for(def.columns[i]));
}

void KeyCodec::append_table_prefix(std::string& out, uint32_t table_id) {
  put_be(out, table_id, 4);
}

std::string KeyCodec::table_prefix(uint32_t table_id) {
  std::string s;
  append_table_prefix(s, table_id);
  return s;
}

std::string KeyCodec::encode(std::span<const Datum> row) const {
  for (size_t i : columns_)
    if (i >= row.size())
      throw Error(ErrorCategory::kInternal, "row has " + std::to_string(row.size()) +
                                                " values, key needs column " +
                                                std::to_string(i + 1));
  std::string out;
  out.reserve(32);
  append_table_prefix(out, table_id_);
  append_fields(
      out, encodings_, [&](size_t k) -> const Datum& { return row[columns_[k]]; }, !keyed_);
  return out;
}

std::vector<std::optional<std::string>> KeyCodec::decode(std::string_view key,
                                                         std::string_view* rest) const {
  if (key.size() < 4 || key.substr(0, 4) != table_prefix(table_id_))
    throw Error(ErrorCategory::kStore,
                "corrupt key in the store: not a key of table " + std::to_string(table_id_));
  key.remove_prefix(4);
  auto values = read_key_fields(key, encodings_);
  if (rest) {
    *rest = key;
  } else if (!key.empty()) {
    throw Error(ErrorCategory::kStore,
                "corrupt key in the store: " + std::to_string(key.size()) + " trailing bytes");
  }
  return values;
}

}  // namespace pgseed
