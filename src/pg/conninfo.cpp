#include "pg/conninfo.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string_view>

namespace pgseed::pg {

namespace {

struct ConninfoOptionsDeleter {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};

bool is_secret(const char* keyword) {
  return std::strcmp(keyword, "password") == 0 || std::strcmp(keyword, "sslpassword") == 0;
}

// libpq expands a dbname that is a URI or holds '=' into a connection string of its own
// (expand_dbname), and so does Connection::open: such a dbname may carry a password.
bool is_expanded(std::string_view dbname) {
  return dbname.rfind("postgresql://", 0) == 0 || dbname.rfind("postgres://", 0) == 0 ||
         dbname.find('=') != std::string_view::npos;
}

// Appends the redacted pairs of `conninfo` to `out`; false when it is unparsable.
bool append_redacted(const std::string& conninfo, std::string& out, int depth) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoOptionsDeleter> opts(
      PQconninfoParse(conninfo.c_str(), &err));
  if (err) PQfreemem(err);
  if (!opts) return false;
  for (auto* o = opts.get(); o->keyword; ++o) {
    if (!o->val || !*o->val || is_secret(o->keyword)) continue;
    if (std::strcmp(o->keyword, "dbname") == 0 && is_expanded(o->val)) {
      // Its own pairs instead (they override the outer ones, as libpq applies them).
      if (depth == 0 && append_redacted(o->val, out, depth + 1)) continue;
      if (!out.empty()) out += ' ';
      out += "dbname=(unparsable)";
      continue;
    }
    if (!out.empty()) out += ' ';
    out += o->keyword;
    out += '=';
    out += o->val;
  }
  return true;
}

}  // namespace

HostChoice host_choice(const std::string& conninfo) {
  HostChoice c;
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoOptionsDeleter> opts(
      PQconninfoParse(conninfo.c_str(), &err));
  if (err) PQfreemem(err);
  if (!opts) return c;
  for (auto* o = opts.get(); o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    std::string_view k = o->keyword, v = o->val;
    if (k == "host" || k == "hostaddr") {
      int n = 1;
      for (char ch : v) n += ch == ',';
      c.hosts = std::max(c.hosts, n);
    } else if (k == "target_session_attrs") {
      c.writable_only = v == "read-write" || v == "primary";
    }
  }
  return c;
}

std::string redact_conninfo(const std::string& conninfo) {
  std::string out;
  if (!append_redacted(conninfo, out, 0)) return "(unparsable conninfo)";
  return out;
}

}  // namespace pgseed::pg
