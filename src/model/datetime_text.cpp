#include "model/datetime_text.h"

#include <charconv>
#include <cstring>
#include <limits>

#include "common/bytes.h"

namespace pgseed {

namespace {

constexpr int64_t kMicrosPerDay = 86'400'000'000LL;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

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

}  // namespace

std::optional<int64_t> parse_date(std::string_view t) {
  if (t == "infinity") return std::numeric_limits<int64_t>::max();
  if (t == "-infinity") return std::numeric_limits<int64_t>::min();
  TextCursor c(t);
  int64_t y = 0, m = 0, d = 0;
  bool ok = parse_ymd(c, y, m, d);
  bool bc = ok && c.eat(" BC");
  ok = ok && c.at_end();
  int64_t days = ok ? to_days(y, bc, m, d, ok) : 0;
  if (!ok) return std::nullopt;
  return days;
}

std::optional<int64_t> parse_timestamp(std::string_view t, bool with_tz) {
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
  if (!ok) return std::nullopt;
  // Local time minus the offset is UTC.
  return days * kMicrosPerDay + ((h * 60 + mi) * 60 + s - offset_seconds) * 1'000'000 + frac;
}

namespace {

// Writes v in `width` digits, zero-padded (v >= 0 and below 10^width).
char* put_digits(char* p, int64_t v, int width) {
  int i = width;
  for (; i >= 2; i -= 2, v /= 100) std::memcpy(p + i - 2, kTwoDigits + 2 * (v % 100), 2);
  if (i == 1) p[0] = char('0' + v % 10);
  return p + width;
}

// "YYYY-MM-DD" of days since 2000-01-01; returns whether the year is BC.
bool append_ymd(std::string& out, int64_t days) {
  int64_t y = 0, m = 0, d = 0;
  civil_from_days(days + kDaysTo2000, y, m, d);
  bool bc = y <= 0;
  int64_t year = bc ? 1 - y : y;
  char buf[32];
  char* p = buf;
  if (year > 9999) {  // as many digits as it takes
    p = std::to_chars(p, buf + 20, year).ptr;
  } else {
    p = put_digits(p, year, 4);
  }
  *p++ = '-';
  p = put_digits(p, m, 2);
  *p++ = '-';
  p = put_digits(p, d, 2);
  out.append(buf, p);
  return bc;
}

}  // namespace

std::string date_text(int64_t days) {
  std::string s;
  append_date_text(s, days);
  return s;
}

void append_date_text(std::string& out, int64_t days) {
  if (days == std::numeric_limits<int64_t>::max()) return void(out += "infinity");
  if (days == std::numeric_limits<int64_t>::min()) return void(out += "-infinity");
  if (append_ymd(out, days)) out += " BC";
}

std::string timestamp_text(int64_t micros, bool with_tz) {
  std::string s;
  append_timestamp_text(s, micros, with_tz);
  return s;
}

void append_timestamp_text(std::string& s, int64_t micros, bool with_tz) {
  if (micros == std::numeric_limits<int64_t>::max()) return void(s += "infinity");
  if (micros == std::numeric_limits<int64_t>::min()) return void(s += "-infinity");
  int64_t days = micros / kMicrosPerDay;
  int64_t rem = micros % kMicrosPerDay;
  if (rem < 0) {
    rem += kMicrosPerDay;
    --days;
  }
  bool bc = append_ymd(s, days);
  int64_t secs = rem / 1'000'000, frac = rem % 1'000'000;
  char buf[24];
  char* p = buf;
  *p++ = ' ';
  p = put_digits(p, secs / 3600, 2);
  *p++ = ':';
  p = put_digits(p, secs / 60 % 60, 2);
  *p++ = ':';
  p = put_digits(p, secs % 60, 2);
  if (frac != 0) {
    int width = 6;
    while (frac % 10 == 0) {
      frac /= 10;
      --width;
    }
    *p++ = '.';
    p = put_digits(p, frac, width);
  }
  s.append(buf, p);
  if (with_tz) s += "+00";
  if (bc) s += " BC";
}

}  // namespace pgseed
