// Connection strings in messages and logs: what may be shown of them.
#pragma once

#include <string>

namespace pgseed::pg {

// `conninfo` (key=value or a postgresql:// URI) as key=value pairs without any secret:
// no password or sslpassword, also none inside a URI given as dbname (its userinfo
// password or ?password= parameter). Unparsable input gives "(unparsable conninfo)".
std::string redact_conninfo(const std::string& conninfo);

}  // namespace pgseed::pg
