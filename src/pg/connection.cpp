#include "pg/connection.h"

#include <cstring>

namespace pgseed::pg {

namespace {

std::string first_line(std::string s) {
  // libpq messages are "FATAL:  msg\nDETAIL: ..." or "connection to server ... failed: msg"
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  auto nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  for (const char* prefix : {"FATAL:  ", "ERROR:  "}) {
    auto p = s.find(prefix);
    if (p != std::string::npos) s = s.substr(0, p) + s.substr(p + std::strlen(prefix));
  }
  return s;
}

struct ConninfoOptionsDeleter {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};

}  // namespace

std::string normalize_conninfo(const std::string& conninfo) {
  if (conninfo.empty() || conninfo.find('=') != std::string::npos ||
      conninfo.rfind("postgresql://", 0) == 0 || conninfo.rfind("postgres://", 0) == 0)
    return conninfo;
  // A bare database name, as psql and pg_recvlogical take it.
  std::string out = "dbname='";
  for (char c : conninfo) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string redact_conninfo(const std::string& raw_conninfo) {
  std::string conninfo = normalize_conninfo(raw_conninfo);
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoOptionsDeleter> opts(
      PQconninfoParse(conninfo.c_str(), &err));
  if (err) PQfreemem(err);
  if (!opts) return "(unparsable conninfo)";
  std::string out;
  for (auto* o = opts.get(); o->keyword; ++o) {
    if (!o->val || !*o->val || std::strcmp(o->keyword, "password") == 0) continue;
    if (!out.empty()) out += ' ';
    out += o->keyword;
    out += '=';
    out += o->val;
  }
  return out;
}

Connection Connection::open(const std::string& raw_conninfo, Kind kind) {
  const std::string conninfo = normalize_conninfo(raw_conninfo);
  // Keep any `options` the user gave and add ours after them (later -c wins).
  std::string options;
  {
    char* err = nullptr;
    std::unique_ptr<PQconninfoOption, ConninfoOptionsDeleter> opts(
        PQconninfoParse(conninfo.c_str(), &err));
    if (!opts) {
      std::string msg = err ? first_line(err) : "unparsable";
      if (err) PQfreemem(err);
      throw Error(ErrorCategory::kConfiguration, "invalid connection string: " + msg);
    }
    for (auto* o = opts.get(); o->keyword; ++o)
      if (std::strcmp(o->keyword, "options") == 0 && o->val && *o->val) options = o->val;
  }
  if (!options.empty()) options += ' ';
  options += kSessionOptions;

  std::vector<const char*> keys = {"dbname", "options", "client_encoding",
                                   "fallback_application_name"};
  std::vector<const char*> vals = {conninfo.c_str(), options.c_str(), "UTF8", "pgseed"};
  if (kind == Kind::kReplication) {
    keys.push_back("replication");
    vals.push_back("database");
  }
  keys.push_back(nullptr);
  vals.push_back(nullptr);
  PGconn* raw = PQconnectdbParams(keys.data(), vals.data(), /*expand_dbname=*/1);
  Connection c(raw);
  if (!raw) throw Error(ErrorCategory::kConnection, "out of memory creating a connection");
  if (PQstatus(raw) != CONNECTION_OK) {
    std::string msg = first_line(PQerrorMessage(raw));
    std::string where = redact_conninfo(conninfo);
    if (where.empty()) {  // libpq's defaults and PG* variables: say what they came to
      const char* h = PQhost(raw);
      const char* p = PQport(raw);
      const char* d = PQdb(raw);
      where = std::string("host=") + (h && *h ? h : "(default)") + " port=" + (p && *p ? p : "(default)") +
              " dbname=" + (d && *d ? d : "(default)");
    }
    ErrorCategory cat = ErrorCategory::kConnection;
    std::string hint;
    if (msg.find("password authentication failed") != std::string::npos ||
        msg.find("no password supplied") != std::string::npos ||
        msg.find("authentication failed") != std::string::npos ||
        msg.find("pg_hba.conf") != std::string::npos ||
        (msg.find("role \"") != std::string::npos && msg.find("does not exist") != std::string::npos) ||
        msg.find("is not permitted to log in") != std::string::npos) {
      cat = ErrorCategory::kAuthentication;
      hint = " (check the user and password, ~/.pgpass or PGPASSWORD)";
    } else if (msg.find("must be superuser or replication role") != std::string::npos ||
               msg.find("permission denied to start WAL sender") != std::string::npos) {
      cat = ErrorCategory::kAuthentication;
      hint = " (grant it with: ALTER ROLE <user> REPLICATION)";
    } else if (msg.find("database \"") != std::string::npos &&
               msg.find("does not exist") != std::string::npos) {
      cat = ErrorCategory::kConfiguration;
    }
    throw Error(cat, "cannot connect to the source (" + where + "): " + msg + hint);
  }
  return c;
}

Error error_from_result(const PGresult* res, PGconn* conn, const std::string& context) {
  std::string msg = res ? PQresultErrorMessage(res) : "";
  if (msg.empty() && conn) msg = PQerrorMessage(conn);
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string sqlstate = state ? state : "";
  ErrorCategory cat = ErrorCategory::kSourceState;
  if (conn && PQstatus(conn) == CONNECTION_BAD) cat = ErrorCategory::kConnection;
  else if (sqlstate.rfind("08", 0) == 0 || sqlstate == "57P01" || sqlstate == "57P02" ||
           sqlstate == "57P03")
    cat = ErrorCategory::kConnection;
  else if (sqlstate.rfind("28", 0) == 0 || sqlstate == "42501")
    cat = ErrorCategory::kAuthentication;
  else if (sqlstate == "42P01" || sqlstate == "42704" || sqlstate == "42601" ||
           sqlstate == "3D000")
    cat = ErrorCategory::kConfiguration;
  std::string line = first_line(msg);
  if (line.empty()) line = "unknown error";
  return Error(cat, context.empty() ? line : context + ": " + line, sqlstate);
}

Result Connection::exec(const std::string& sql, const char* what) {
  Result r(PQexec(conn_.get(), sql.c_str()));
  auto st = PQresultStatus(r.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_OUT &&
      st != PGRES_COPY_BOTH && st != PGRES_COPY_IN)
    throw error_from_result(r.get(), conn_.get(), what ? what : "");
  return r;
}

Result Connection::exec_params(const std::string& sql,
                               const std::vector<std::optional<std::string>>& params,
                               const char* what) {
  std::vector<const char*> vals;
  for (const auto& p : params) vals.push_back(p ? p->c_str() : nullptr);
  Result r(PQexecParams(conn_.get(), sql.c_str(), int(vals.size()), nullptr, vals.data(), nullptr,
                        nullptr, 0));
  auto st = PQresultStatus(r.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    throw error_from_result(r.get(), conn_.get(), what ? what : "");
  return r;
}

std::string Connection::query_value(const std::string& sql,
                                    const std::vector<std::optional<std::string>>& params) {
  Result r = exec_params(sql, params);
  if (PQntuples(r.get()) < 1)
    throw Error(ErrorCategory::kInternal, "query returned no row: " + sql);
  return PQgetvalue(r.get(), 0, 0);
}

std::string Connection::quote_literal(const std::string& s) const {
  char* q = PQescapeLiteral(conn_.get(), s.data(), s.size());
  if (!q) throw Error(ErrorCategory::kInternal, "cannot quote literal");
  std::string out(q);
  PQfreemem(q);
  return out;
}

std::string Connection::describe() const {
  std::string host = PQhost(conn_.get()) ? PQhost(conn_.get()) : "";
  return host + ":" + PQport(conn_.get()) + "/" + PQdb(conn_.get());
}

}  // namespace pgseed::pg
