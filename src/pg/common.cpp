// Small shared definitions: Lsn text form, error category names, identifier quoting.
#include <cinttypes>
#include <cstdio>

#include "pgseed/error.h"
#include "pgseed/lsn.h"
#include "pg/identifiers.h"
#include "store/store.h"
#include "store/table_def.h"

namespace pgseed {

Lsn Lsn::parse(std::string_view text) {
  auto slash = text.find('/');
  auto hex = [](std::string_view s, uint64_t& out) {
    if (s.empty() || s.size() > 8) return false;
    out = 0;
    for (char c : s) {
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return false;
      out = out * 16 + d;
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

const char* category_name(ErrorCategory c) {
  switch (c) {
    case ErrorCategory::kConnection: return "connection";
    case ErrorCategory::kAuthentication: return "authentication";
    case ErrorCategory::kConfiguration: return "configuration";
    case ErrorCategory::kSourceState: return "source state";
    case ErrorCategory::kStore: return "store";
    case ErrorCategory::kDecode: return "decode";
    case ErrorCategory::kInternal: return "internal";
  }
  return "unknown";
}

const char* phase_name(StoreState::Phase p) {
  switch (p) {
    case StoreState::Phase::kEmpty: return "empty";
    case StoreState::Phase::kCopying: return "copying";
    case StoreState::Phase::kStreaming: return "streaming";
  }
  return "unknown";
}

std::string TableDef::qualified() const { return quote_ident(schema) + "." + quote_ident(name); }

}  // namespace pgseed
