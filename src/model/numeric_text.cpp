#include "model/numeric_text.h"

#include <algorithm>
#include <limits>

namespace pgseed {

std::optional<Decimal> parse_numeric(std::string_view t) {
  Decimal d;
  if (t == "NaN") {
    d.cls = Decimal::Class::kNaN;
    return d;
  }
  if (t == "Infinity") {
    d.cls = Decimal::Class::kPosInf;
    return d;
  }
  if (t == "-Infinity") {
    d.cls = Decimal::Class::kNegInf;
    return d;
  }
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
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
  if (i != t.size() || int_len + frac_len == 0) return std::nullopt;
  d.dscale = frac_len;
  std::string all;
  all.reserve(int_len + frac_len);
  all.append(t.substr(int_begin, int_len));
  all.append(t.substr(frac_begin, frac_len));
  size_t first = all.find_first_not_of('0');
  if (first == std::string::npos) {
    d.cls = Decimal::Class::kZero;
    return d;
  }
  size_t last = all.find_last_not_of('0');
  d.digits = all.substr(first, last - first + 1);
  d.exponent = static_cast<int64_t>(int_len) - static_cast<int64_t>(first);
  if (d.exponent > std::numeric_limits<int32_t>::max() - 1 ||
      d.exponent < std::numeric_limits<int32_t>::min() + 1)
    return std::nullopt;
  d.cls = negative ? Decimal::Class::kNegative : Decimal::Class::kPositive;
  return d;
}

std::optional<std::string> numeric_text(const Decimal& d) {
  switch (d.cls) {
    case Decimal::Class::kNaN:
      return "NaN";
    case Decimal::Class::kPosInf:
      return "Infinity";
    case Decimal::Class::kNegInf:
      return "-Infinity";
    default:
      break;
  }
  const bool zero = d.cls == Decimal::Class::kZero;
  std::string s;
  if (d.cls == Decimal::Class::kNegative) s.push_back('-');
  const int64_t n = static_cast<int64_t>(d.digits.size());
  if (zero || d.exponent <= 0) {
    s.push_back('0');
  } else {
    s.append(d.digits, 0, static_cast<size_t>(std::min(n, d.exponent)));
    if (d.exponent > n) s.append(static_cast<size_t>(d.exponent - n), '0');
  }
  if (d.dscale == 0) return s;
  s.push_back('.');
  std::string frac;
  if (!zero) {
    if (d.exponent < 0) frac.append(static_cast<size_t>(-d.exponent), '0');
    if (d.exponent < n)
      frac.append(d.digits, static_cast<size_t>(std::max<int64_t>(d.exponent, 0)));
  }
  if (frac.size() > d.dscale) return std::nullopt;
  frac.append(d.dscale - frac.size(), '0');
  s += frac;
  return s;
}

}  // namespace pgseed
