// Connection: an RAII libpq connection with pgseed's fixed session settings.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pgseed/error.h"

namespace pgseed::pg {

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// The session settings every connection uses, copy and replication alike, so that a
// value's text form is the same whichever path it arrived by (DESIGN.md, SQLite store).
inline constexpr const char* kSessionOptions =
    "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 "
    "-c bytea_output=hex";

// A bare database name ("mydb": no '=' and not a URI) as the conninfo "dbname='mydb'";
// anything else unchanged (an empty conninfo means libpq's defaults and PG* variables).
std::string normalize_conninfo(const std::string& conninfo);

// `conninfo` with any password removed, for messages and logs.
std::string redact_conninfo(const std::string& conninfo);

class Connection {
 public:
  enum class Kind { kNormal, kReplication };

  // Connects; throws Error (kConnection, kAuthentication or kConfiguration) with one line
  // that names the server and never the password.
  static Connection open(const std::string& conninfo, Kind kind = Kind::kNormal);

  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;

  PGconn* get() const { return conn_.get(); }

  // Runs `sql`; throws Error on failure with `what` as context.
  Result exec(const std::string& sql, const char* what = nullptr);
  // Runs `sql` with text parameters $1..$n (nullopt = NULL).
  Result exec_params(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                     const char* what = nullptr);
  // Single value of a one-row result (throws if there is no row).
  std::string query_value(const std::string& sql,
                          const std::vector<std::optional<std::string>>& params = {});

  std::string quote_literal(const std::string& s) const;
  int server_version() const { return PQserverVersion(conn_.get()); }
  // host:port/dbname, for messages.
  std::string describe() const;

 private:
  struct ConnDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  explicit Connection(PGconn* c) : conn_(c) {}
  std::unique_ptr<PGconn, ConnDeleter> conn_;
};

// Builds the Error for a failed result, classifying it by SQLSTATE.
Error error_from_result(const PGresult* res, PGconn* conn, const std::string& context);

}  // namespace pgseed::pg
