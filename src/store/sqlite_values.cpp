#include "store/sqlite_values.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "model/pg_type.h"
#include "model/value_codec.h"

namespace pgseed {

std::optional<int> numeric_real_scale(uint32_t base_type_oid, int32_t type_mod) {
  constexpr int32_t kVarHdrSz = 4;
  if (base_type_oid != kNumericOid || type_mod < kVarHdrSz) return std::nullopt;
  // numeric.c: precision in the high 16 bits, scale as an 11-bit two's complement
  // (PostgreSQL 15 accepts scales from -1000 to 1000, and scales above the precision).
  const int precision = ((type_mod - kVarHdrSz) >> 16) & 0xffff;
  const int scale = (((type_mod - kVarHdrSz) & 0x7ff) ^ 1024) - 1024;
  if (precision < 1 || precision > 15 || scale < 0 || scale > precision) return std::nullopt;
  return scale;
}

namespace {

// Whether `t` is [-]D+ with exactly `scale` decimals after a '.', no leading zero, at most
// 15 digits in all and not a negative zero: then it is what append_scaled_numeric prints
// for its nearest double. (DBL_DIG: a decimal of at most 15 significant digits comes back
// from its nearest double when printed to as many digits; "%.*f" prints `scale` decimals,
// which is as many digits as `t` has, or more when `t` starts with "0.".)
bool prints_back_surely(std::string_view t, int scale) {
  size_t i = !t.empty() && t[0] == '-' ? 1 : 0;
  const size_t int_begin = i;
  bool nonzero = false;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') nonzero |= t[i++] != '0';
  const size_t int_digits = i - int_begin;
  if (int_digits == 0 || (int_digits > 1 && t[int_begin] == '0')) return false;
  size_t frac_digits = 0;
  if (scale > 0) {
    if (i == t.size() || t[i] != '.') return false;
    for (++i; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i, ++frac_digits) nonzero |= t[i] != '0';
  }
  return i == t.size() && frac_digits == size_t(scale) && int_digits + frac_digits <= 15 &&
         (nonzero || int_begin == 0);
}

}  // namespace

std::optional<double> parse_scaled_numeric(std::string_view text, int scale) {
  double v = 0;
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), last, v, std::chars_format::fixed);
  if (ec != std::errc() || ptr != last || text.empty() || !std::isfinite(v)) return std::nullopt;
  if (prints_back_surely(text, scale)) return v;
  // Any other text: the guarantee that reading gives it back, checked by printing.
  std::string back;
  append_scaled_numeric(back, v, scale);
  if (back != text) return std::nullopt;
  return v;
}

void append_scaled_numeric(std::string& out, double value, int scale) {
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%.*f", scale, value == 0 ? 0.0 : value);
  std::string_view s(buf, n > 0 && size_t(n) < sizeof buf ? size_t(n) : 0);
  // A value that rounds to zero prints "-0.00"; PostgreSQL's numeric has no negative zero.
  if (s.size() > 1 && s[0] == '-' && s.find_first_not_of("0.", 1) == std::string_view::npos)
    s.remove_prefix(1);
  out.append(s);
}

namespace {

bool digits(std::string_view s, size_t from, size_t count) {
  for (size_t i = from; i < from + count; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

// YYYY-MM-DD HH:MM:SS followed by nothing or by '.' and one or more digits.
bool is_plain_timestamp(std::string_view s) {
  if (s.size() < 19 || !digits(s, 0, 4) || s[4] != '-' || !digits(s, 5, 2) || s[7] != '-' ||
      !digits(s, 8, 2) || s[10] != ' ' || !digits(s, 11, 2) || s[13] != ':' || !digits(s, 14, 2) ||
      s[16] != ':' || !digits(s, 17, 2))
    return false;
  if (s.size() == 19) return true;
  return s[19] == '.' && s.size() > 20 && digits(s, 20, s.size() - 20);
}

}  // namespace

std::optional<std::string_view> strip_utc_suffix(std::string_view text) {
  if (text.size() < 22 || text.substr(text.size() - 3) != "+00") return std::nullopt;
  std::string_view plain = text.substr(0, text.size() - 3);
  if (!is_plain_timestamp(plain)) return std::nullopt;
  return plain;
}

bool lacks_utc_suffix(std::string_view stored) { return is_plain_timestamp(stored); }

SqliteValue sqlite_value(const ColumnDef& col, std::string_view text, int format) {
  SqliteValue out;
  out.text = text;
  if (col.storage == StorageClass::kReal) {
    // float4 texts need their own parse: text -> double -> float can round twice.
    std::optional<double> v =
        col.base_type_oid == kFloat4Oid ? parse_float4_exact(text) : parse_float_exact(text);
    if (!v && format >= kSqliteFormatNative) {
      if (text == "Infinity")
        v = HUGE_VAL;
      else if (text == "-Infinity")
        v = -HUGE_VAL;
    }
    if (v) out.is_real = true, out.real = *v;  // else NaN, -0 (and format 1's ±Infinity): text
    return out;
  }
  if (col.storage != StorageClass::kText || format < kSqliteFormatNative) return out;
  if (col.base_type_oid == kTimestamptzOid) {
    if (auto plain = strip_utc_suffix(text)) out.text = *plain;
  } else if (auto scale = numeric_real_scale(col.base_type_oid, col.type_mod)) {
    if (auto v = parse_scaled_numeric(text, *scale)) out.is_real = true, out.real = *v;
  }
  return out;
}

}  // namespace pgseed
