// numeric in PostgreSQL's text form <-> its parts (class, significant digits, exponent,
// display scale), exactly: numeric_text(*parse_numeric(t)) is PostgreSQL's output for t.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgseed {

struct Decimal {
  // In PostgreSQL's order (the RocksDB key encoding writes these values as they are).
  enum class Class : uint8_t { kNegInf = 1, kNegative, kZero, kPositive, kPosInf, kNaN };
  Class cls = Class::kZero;
  std::string digits;    // significant digits, no leading or trailing zeros
  int64_t exponent = 0;  // value = 0.digits x 10^exponent
  uint64_t dscale = 0;   // digits after the decimal point in the text
  bool finite_nonzero() const { return cls == Class::kPositive || cls == Class::kNegative; }
};

// Parses numeric's input form: [+-]digits[.digits] (at least one digit), NaN, Infinity,
// -Infinity. Returns nullopt for anything else and for exponents beyond int32.
std::optional<Decimal> parse_numeric(std::string_view text);

// PostgreSQL's output for `d`: "-12.3400", "0.00", "NaN". Returns nullopt when `d` is not
// printable as given (a display scale smaller than the digits after the point need).
std::optional<std::string> numeric_text(const Decimal& d);

}  // namespace pgseed
