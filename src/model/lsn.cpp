// Lsn's text form, "X/X" as PostgreSQL prints it (include/pgseed/lsn.h).
#include "pgseed/lsn.h"

#include <cinttypes>
#include <cstdio>

#include "common/bytes.h"
#include "pgseed/error.h"

namespace pgseed {

Lsn Lsn::parse(std::string_view text) {
  auto slash = text.find('/');
  auto hex = [](std::string_view s, uint64_t& out) {
    if (s.empty() || s.size() > 8) return false;
    out = 0;
    for (char c : s) {
      int d = hex_value(c);
      if (d < 0) return false;
      out = out * 16 + static_cast<uint64_t>(d);
    }
    return true;
  };
  uint64_t hi, lo;
  if (slash == std::string_view::npos || !hex(text.substr(0, slash), hi) ||
      !hex(text.substr(slash + 1), lo))
    throw Error(ErrorCategory::kDecode, "invalid LSN '" + std::string(text) + "'");
  return Lsn((hi << 32) | lo);
}

std::string Lsn::str() const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRIX64 "/%" PRIX64, value >> 32, value & 0xffffffffu);
  return buf;
}

}  // namespace pgseed
