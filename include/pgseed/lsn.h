// pgseed::Lsn — a PostgreSQL WAL position, printed and parsed as "X/X".
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace pgseed {

// Thread-safety: a value type, like the integer inside: threads may read one Lsn at once;
// one that is written while others read it needs external synchronization.
struct Lsn {
  uint64_t value = 0;

  constexpr Lsn() = default;
  constexpr explicit Lsn(uint64_t v) : value(v) {}

  // Parses "16/B374D848". Throws pgseed::Error (kDecode) on anything else.
  static Lsn parse(std::string_view text);
  // "16/B374D848", as PostgreSQL prints it.
  std::string str() const;

  constexpr bool valid() const { return value != 0; }
  constexpr auto operator<=>(const Lsn&) const = default;
};

}  // namespace pgseed
