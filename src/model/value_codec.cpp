#include "model/value_codec.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>

#include "common/bytes.h"
#include "pgseed/error.h"

namespace pgseed {

bool parse_int64(std::string_view text, int64_t& out) {
  const char* first = text.data();
  const char* last = first + text.size();
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(first, last, value, 10);
  if (ec != std::errc() || ptr != last || text.empty()) return false;
  out = value;
  return true;
}

namespace {

// Parses a finite number in T's range; nullopt for anything else and for -0.
template <typename T>
std::optional<T> parse_real(std::string_view text) {
  // from_chars also takes "nan", "inf" and "infinity" in any case; isfinite drops those
  // together with PostgreSQL's own "NaN"/"Infinity".
  T value = 0;
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), last, value, std::chars_format::general);
  if (ec != std::errc() || ptr != last || text.empty()) return std::nullopt;
  if (!std::isfinite(value)) return std::nullopt;
  if (value == 0 && std::signbit(value)) return std::nullopt;
  return value;
}

}  // namespace

std::optional<double> parse_float_exact(std::string_view text) { return parse_real<double>(text); }

std::optional<double> parse_float4_exact(std::string_view text) {
  std::optional<float> exact = parse_real<float>(text);
  if (!exact) return std::nullopt;
  std::optional<double> nearest = parse_real<double>(text);
  if (nearest && static_cast<float>(*nearest) == *exact) return nearest;
  return static_cast<double>(*exact);
}

namespace {

// PostgreSQL prints float4/float8 with its port of Ryu (src/common/d2s.c, f2s.c): the
// fewest significant digits that read back as the same value, the closest such decimal
// to the value when several have that length. One deliberate difference from upstream Ryu
// and from std::to_chars (ryu_common.h, STRICTLY_SHORTEST 0): PostgreSQL never prints a
// decimal lying exactly halfway between two floats, even where round-half-even would read
// it back correctly. So 21975158316857032.0 prints as "2.1975158316857032e+16", not
// to_chars's "2.197515831685703e+16" (the midpoint below it). We take to_chars's shortest
// digits, and only when they are such a midpoint search longer digits for PostgreSQL's.

template <typename T>
struct FloatTraits;
template <>
struct FloatTraits<double> {
  using Bits = uint64_t;
  static constexpr int kMantissaBits = 52;
  static constexpr int kBias = 1023;
  static constexpr int kMaxDigits = 17;
  static constexpr int kFixedLimit = 15;  // fixed notation for decimal exponents [-4, 15)
};
template <>
struct FloatTraits<float> {
  using Bits = uint32_t;
  static constexpr int kMantissaBits = 23;
  static constexpr int kBias = 127;
  static constexpr int kMaxDigits = 9;
  static constexpr int kFixedLimit = 6;  // fixed notation for decimal exponents [-4, 6)
};

// A positive decimal digits * 10^exp10.
struct Decimal {
  uint64_t digits;
  int exp10;
};

// Reads std::to_chars's scientific output ("d.ddde+XX", no sign) as a Decimal.
Decimal read_scientific(const char* p, const char* end) {
  Decimal d{0, 0};
  int count = 0;
  for (; p < end && *p != 'e'; ++p) {
    if (*p == '.') continue;
    d.digits = d.digits * 10 + static_cast<uint64_t>(*p - '0');
    ++count;
  }
  int exp = 0;
  if (p < end) std::from_chars(p[1] == '+' ? p + 2 : p + 1, end, exp);
  d.exp10 = exp - (count - 1);
  return d;
}

// x * 5^k == target, without overflow.
bool mul_pow5_equals(uint64_t x, int k, uint64_t target) {
  for (int i = 0; i < k; ++i) {
    if (x > target / 5) return false;
    x *= 5;
  }
  return x == target;
}

// Whether odd_m * 2^exp2 == d exactly.
bool equals_dyadic(Decimal d, uint64_t odd_m, int exp2) {
  if (d.digits == 0) return false;
  int twos = std::countr_zero(d.digits);
  uint64_t odd_d = d.digits >> twos;
  if (d.exp10 + twos != exp2) return false;
  // odd_d * 5^exp10 == odd_m (exp10 >= 0), or odd_d == odd_m * 5^-exp10 (exp10 < 0)
  return d.exp10 >= 0 ? mul_pow5_equals(odd_d, d.exp10, odd_m)
                      : mul_pow5_equals(odd_m, -d.exp10, odd_d);
}

// Whether d lies exactly halfway between |value| (finite, non-zero) and a neighbour.
template <typename T>
bool is_midpoint(T value, Decimal d) {
  using Tr = FloatTraits<T>;
  typename Tr::Bits bits;
  std::memcpy(&bits, &value, sizeof bits);
  const uint64_t mantissa = bits & ((typename Tr::Bits(1) << Tr::kMantissaBits) - 1);
  const int biased = static_cast<int>((bits >> Tr::kMantissaBits) &
                                      ((1u << (sizeof(T) * 8 - 1 - Tr::kMantissaBits)) - 1));
  // |value| = m2 * 2^e2
  const uint64_t m2 = biased == 0 ? mantissa : (uint64_t(1) << Tr::kMantissaBits) | mantissa;
  const int e2 = (biased == 0 ? 1 : biased) - Tr::kBias - Tr::kMantissaBits;
  if (equals_dyadic(d, 2 * m2 + 1, e2 - 1)) return true;  // halfway to the next float up
  // Halfway down: the gap below a power of two is half as wide (except next to denormals).
  if (mantissa == 0 && biased > 1) return equals_dyadic(d, 4 * m2 - 1, e2 - 2);
  return equals_dyadic(d, 2 * m2 - 1, e2 - 1);
}

// Whether d reads back as |value| and is not a midpoint: strictly inside its interval.
template <typename T>
bool strictly_rounds_to(T value, Decimal d) {
  char buf[48];
  auto r = std::to_chars(buf, buf + 24, d.digits);  // at most 20 digits
  *r.ptr = 'e';
  r = std::to_chars(r.ptr + 1, buf + sizeof buf, d.exp10);
  T back{};
  auto [ptr, ec] = std::from_chars(buf, r.ptr, back, std::chars_format::scientific);
  return ec == std::errc() && back == value && !is_midpoint(value, d);
}

// PostgreSQL's digits for a midpoint case: for each length from `length` up, the decimal
// of that length closest to |value| that lies strictly inside its interval (it is the
// correctly rounded one or a neighbour of it).
template <typename T>
Decimal strict_shortest(T value, int length) {
  Decimal best{0, 0};
  for (int len = length; len <= FloatTraits<T>::kMaxDigits; ++len) {
    char sci[48];
    auto r = std::to_chars(sci, sci + sizeof sci, value, std::chars_format::scientific, len - 1);
    Decimal c = read_scientific(sci, r.ptr);
    best = c;
    if (strictly_rounds_to(value, c)) return c;
    for (uint64_t digits : {c.digits - 1, c.digits + 1}) {
      Decimal n{digits, c.exp10};
      if (strictly_rounds_to(value, n)) return n;
    }
  }
  return best;  // unreachable: kMaxDigits digits always fall strictly inside
}

void append_exponent(std::string& out, int exp) {
  out.push_back('e');
  out.push_back(exp < 0 ? '-' : '+');
  unsigned e = static_cast<unsigned>(exp < 0 ? -exp : exp);
  if (e < 10) out.push_back('0');
  char buf[8];
  auto r = std::to_chars(buf, buf + sizeof buf, e);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

// Lays out d as d2s.c/f2s.c's to_chars does: fixed point when the decimal exponent of the
// first digit is in [-4, fixed_limit), else d[.ddd]e+XX with at least two exponent digits.
void append_decimal(std::string& out, Decimal d, int fixed_limit) {
  while (d.digits % 10 == 0) {
    d.digits /= 10;
    ++d.exp10;
  }
  char digits[24]{};
  auto r = std::to_chars(digits, digits + sizeof digits, d.digits);
  const size_t n = static_cast<size_t>(r.ptr - digits);
  const int exp = d.exp10 + static_cast<int>(n) - 1;
  if (exp < -4 || exp >= fixed_limit) {
    out.push_back(digits[0]);
    if (n > 1) {
      out.push_back('.');
      out.append(digits + 1, n - 1);
    }
    append_exponent(out, exp);
  } else if (exp >= 0) {
    const size_t int_len = static_cast<size_t>(exp) + 1;
    if (n <= int_len) {
      out.append(digits, n);
      out.append(int_len - n, '0');
    } else {
      out.append(digits, int_len);
      out.push_back('.');
      out.append(digits + int_len, n - int_len);
    }
  } else {
    out += "0.";
    out.append(static_cast<size_t>(-exp - 1), '0');
    out.append(digits, n);
  }
}

template <typename T>
void append_shortest(std::string& out, T value) {
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "Infinity" : "-Infinity";
    return;
  }
  if (value == 0) {
    out += std::signbit(value) ? "-0" : "0";
    return;
  }
  if (std::signbit(value)) {
    out.push_back('-');
    value = -value;
  }
  char sci[48];
  auto r = std::to_chars(sci, sci + sizeof sci, value, std::chars_format::scientific);
  Decimal d = read_scientific(sci, r.ptr);
  if (is_midpoint(value, d)) {
    int length = 0;
    for (uint64_t x = d.digits; x != 0; x /= 10) ++length;
    d = strict_shortest(value, length);
  }
  append_decimal(out, d, FloatTraits<T>::kFixedLimit);
}

}  // namespace

void append_float8(std::string& out, double value) { append_shortest(out, value); }
void append_float4(std::string& out, float value) { append_shortest(out, value); }

std::string format_float8(double value) {
  std::string s;
  append_float8(s, value);
  return s;
}

std::string format_float4(float value) {
  std::string s;
  append_float4(s, value);
  return s;
}

bool parse_bool(std::string_view text, bool& out) {
  if (text == "t") {
    out = true;
    return true;
  }
  if (text == "f") {
    out = false;
    return true;
  }
  return false;
}

std::string decode_bytea_hex(std::string_view text) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0)
    throw Error(ErrorCategory::kDecode,
                "bytea value is not in hex format (\\x followed by pairs of hex digits)");
  std::string bytes;
  bytes.resize((text.size() - 2) / 2);
  for (size_t i = 0; i < bytes.size(); ++i) {
    int hi = hex_value(text[2 + 2 * i]);
    int lo = hex_value(text[3 + 2 * i]);
    if (hi < 0 || lo < 0)
      throw Error(ErrorCategory::kDecode, "bytea value has a non-hex character");
    bytes[i] = static_cast<char>((hi << 4) | lo);
  }
  return bytes;
}

void append_bytea_hex(std::string& out, std::string_view bytes) {
  size_t at = out.size();
  out.resize(at + 2 + 2 * bytes.size());
  char* p = out.data() + at;
  *p++ = '\\';
  *p++ = 'x';
  for (unsigned char b : bytes) {
    *p++ = kHexDigits[b >> 4];
    *p++ = kHexDigits[b & 0xF];
  }
}

namespace {

void require_value(const Datum& d) {
  if (d.kind == Datum::Kind::kUnchanged)
    throw Error(ErrorCategory::kInternal, "an unchanged TOAST value has no text to print");
}

}  // namespace

void append_csv_field(std::string& out, const Datum& d, bool single_column) {
  require_value(d);
  if (d.is_null()) return;
  std::string_view s = d.text;
  // The rules of copyto.c's CopyAttributeOutCSV with the CSV defaults: a value equal to the
  // NULL string (empty) is quoted; so is one holding the delimiter, the quote, CR or LF.
  bool quote = s.empty() || (single_column && s == "\\.") ||
               s.find_first_of(",\"\n\r") != std::string_view::npos;
  if (!quote) {
    out.append(s);
    return;
  }
  out.push_back('"');
  size_t start = 0;
  for (size_t q = s.find('"'); q != std::string_view::npos; q = s.find('"', q + 1)) {
    out.append(s.substr(start, q + 1 - start));
    out.push_back('"');
    start = q + 1;
  }
  out.append(s.substr(start));
  out.push_back('"');
}

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one (overlong
// forms, surrogates and code points above U+10FFFF are invalid).
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

void append_json_value(std::string& out, const Datum& d) {
  require_value(d);
  if (d.is_null()) {
    out += "null";
    return;
  }
  std::string_view s = d.text;
  out.push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escaping
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      size_t len = utf8_sequence_length(s, i);
      if (len != 0) {
        i += len;
        continue;
      }
    }
    out.append(s.substr(run, i - run));
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c >= 0x80) {
          out += "\\ufffd";
        } else {
          out += "\\u00";
          out.push_back(kHexDigits[c >> 4]);
          out.push_back(kHexDigits[c & 0xF]);
        }
    }
    ++i;
    run = i;
  }
  out.append(s.substr(run));
  out.push_back('"');
}

}  // namespace pgseed
