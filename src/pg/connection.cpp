#include "pg/connection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "pg/server_error.h"

namespace pgseed::pg {

void ResultDeleter::operator()(PGresult* r) const { PQclear(r); }
void Connection::ConnDeleter::operator()(PGconn* c) const { PQfinish(c); }

namespace {

struct ConninfoOptionsDeleter {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};

// connect_timeout as libpq applies it (0: none; values below 2 count as 2).
int connect_timeout_seconds(PGconn* conn) {
  std::unique_ptr<PQconninfoOption, ConninfoOptionsDeleter> opts(PQconninfo(conn));
  int seconds = 0;
  for (auto* o = opts.get(); o && o->keyword; ++o)
    if (std::strcmp(o->keyword, "connect_timeout") == 0 && o->val && *o->val)
      seconds = std::atoi(o->val);
  return seconds <= 0 ? 0 : std::max(seconds, 2);
}

// Drives PQconnectPoll to the end. Like libpq's own blocking connect, connect_timeout
// bounds each attempt (a new socket is a new attempt: the next address or host); unlike
// it, an attempt that times out ends the whole connect (the caller may retry).
bool complete_connection(PGconn* conn, bool& timed_out) {
  using Clock = std::chrono::steady_clock;
  const int timeout = connect_timeout_seconds(conn);
  int sock = -1;
  Clock::time_point deadline;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  for (;;) {
    if (st == PGRES_POLLING_OK) return true;
    if (st == PGRES_POLLING_FAILED) return false;
    if (PQsocket(conn) < 0) return false;
    if (PQsocket(conn) != sock) {
      sock = PQsocket(conn);
      deadline = Clock::now() + std::chrono::seconds(timeout);
    }
    pollfd pfd{sock, short(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    int wait_ms = -1;
    if (timeout > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        return false;
      }
      wait_ms = int(left.count());
    }
    int n = poll(&pfd, 1, wait_ms);
    if (n < 0 && errno != EINTR) return false;
    if (n <= 0) continue;  // interrupted, or the deadline check above ends it
    st = PQconnectPoll(conn);
  }
}

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
  PGconn* raw = PQconnectStartParams(keys.data(), vals.data(), /*expand_dbname=*/1);
  Connection c(raw);
  if (!raw) throw Error(ErrorCategory::kConnection, "out of memory creating a connection");
  // Verbose while connecting: the server's SQLSTATE then shows in the message.
  PQsetErrorVerbosity(raw, PQERRORS_VERBOSE);
  bool timed_out = false;
  bool ok = PQstatus(raw) != CONNECTION_BAD && complete_connection(raw, timed_out);
  if (ok && PQstatus(raw) == CONNECTION_OK) {
    PQsetErrorVerbosity(raw, PQERRORS_DEFAULT);
    // libpq's default prints NOTICE/WARNING messages to stderr; the library never writes
    // there. Nothing pgseed runs depends on them (a server going down also sends a
    // WARNING before it closes the connection: the closed connection is what counts).
    PQsetNoticeProcessor(raw, [](void*, const char*) {}, nullptr);
    return c;
  }
  std::string msg = PQerrorMessage(raw);
  std::string sqlstate = take_sqlstate(msg);
  msg = first_line(msg);
  if (timed_out) msg = "timeout expired (connect_timeout)";
  if (msg.empty()) msg = "unknown error";
  ErrorClass cls = classify_error(sqlstate, /*connection_lost=*/true);
  if (sqlstate.empty() && PQconnectionNeedsPassword(raw)) cls = {ErrorCategory::kAuthentication, false};
  std::string hint;
  if (cls.category == ErrorCategory::kAuthentication && sqlstate != "42501")
    hint = " (check the user and password, ~/.pgpass or PGPASSWORD)";
  else if (sqlstate == "42501" && kind == Kind::kReplication)
    hint = " (grant it with: ALTER ROLE <user> REPLICATION)";
  std::string where = redact_conninfo(conninfo);
  if (where.empty()) {  // libpq's defaults and PG* variables: say what they came to
    const char* h = PQhost(raw);
    const char* p = PQport(raw);
    const char* d = PQdb(raw);
    where = std::string("host=") + (h && *h ? h : "(default)") + " port=" + (p && *p ? p : "(default)") +
            " dbname=" + (d && *d ? d : "(default)");
  }
  throw Error(cls.category, "cannot connect to the source (" + where + "): " + msg + hint, sqlstate,
              cls.transient);
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

int Connection::server_version() const { return PQserverVersion(conn_.get()); }

std::string Connection::describe() const {
  std::string host = PQhost(conn_.get()) ? PQhost(conn_.get()) : "";
  return host + ":" + PQport(conn_.get()) + "/" + PQdb(conn_.get());
}

}  // namespace pgseed::pg
