// uuid in PostgreSQL's text form <-> its 16 bytes.
#pragma once

#include <string>
#include <string_view>

namespace pgseed {

// Appends the 16 bytes of a uuid in any of PostgreSQL's input forms (32 hex digits, either
// case, optionally in braces, a '-' allowed after any group of four) to `out`. Returns false
// (out unchanged) for anything else.
bool parse_uuid(std::string_view text, std::string& out);

// PostgreSQL's output: lower case, 8-4-4-4-12.
std::string uuid_text(std::string_view bytes);

}  // namespace pgseed
