// Connection strings in messages and logs: what may be shown of them.
#pragma once

#include <string>

namespace pgseed::pg {

// `conninfo` (key=value or a postgresql:// URI) as key=value pairs without any secret:
// no password or sslpassword, also none inside a URI given as dbname (its userinfo
// password or ?password= parameter). Unparsable input gives "(unparsable conninfo)".
std::string redact_conninfo(const std::string& conninfo);

// How libpq picks among the hosts of `conninfo` (host=a,b or postgresql://a,b/...).
struct HostChoice {
  int hosts = 1;               // how many hosts (or hostaddrs) it names (at least 1)
  bool writable_only = false;  // target_session_attrs=read-write or primary
};
// Unparsable input gives the default (one host): Connection::open says why it fails.
HostChoice host_choice(const std::string& conninfo);

}  // namespace pgseed::pg
