// Numbers in the text form the server sends them in (catalog query results, replication
// command results), parsed strictly.
#pragma once

#include <cstdint>
#include <string_view>

namespace pgseed::pg {

// Each throws Error(kDecode) naming `what` when `text` is not a whole number of the
// type's range (an empty text, which is how libpq shows NULL, included).
int64_t parse_int64(std::string_view text, const char* what);
int32_t parse_int32(std::string_view text, const char* what);
uint32_t parse_uint32(std::string_view text, const char* what);  // an oid, a timeline

}  // namespace pgseed::pg
