// Connection: an RAII libpq connection with pgseed's fixed session settings.
//
// This header does not include libpq-fe.h: code outside src/pg holds connections but never
// calls libpq (src/pg owns every libpq call; the replication stream is ReplicationConnection,
// COPY ... TO STDOUT is CopyReader).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pg/conninfo.h"
#include "pgseed/error.h"

// libpq's handle types, declared as libpq-fe.h declares them.
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace pgseed::pg {

struct ResultDeleter {
  void operator()(PGresult* r) const;
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

// Not thread-safe: one thread uses a connection at a time (CopyReader::cancel is the one
// call another thread may make).
class Connection {
 public:
  enum class Kind { kNormal, kReplication };

  // Connects; throws Error with one line that names the server and never the password.
  // The error is classified by the server's SQLSTATE when the server sent one
  // (authentication 28xxx, privilege 42501, unknown database 3D000: permanent; starting
  // up or shutting down 57P03, too many connections 53300: transient), else by the
  // connection's status (refused, unreachable, timed out: transient kConnection).
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
  int server_version() const;
  // host:port/dbname, for messages.
  std::string describe() const;

 private:
  struct ConnDeleter {
    void operator()(PGconn* c) const;
  };
  explicit Connection(PGconn* c) : conn_(c) {}
  std::unique_ptr<PGconn, ConnDeleter> conn_;
};

}  // namespace pgseed::pg
