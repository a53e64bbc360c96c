// Errors from the server or the connection: turned into pgseed::Error, classified by the
// SQLSTATE and the connection's status, never by the message text.
#pragma once

#include <string>
#include <string_view>

#include "pgseed/error.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace pgseed::pg {

struct ErrorClass {
  ErrorCategory category;
  bool transient;
};

// What kind of failure `sqlstate` is (empty: the server sent none); `connection_lost`
// says the connection is gone (PQstatus CONNECTION_BAD), which classifies an error that
// has no SQLSTATE.
//   transient: class 08 (connection exception), 57P01 admin_shutdown, 57P02
//     crash_shutdown, 57P03 cannot_connect_now, 53300 too_many_connections, 55006
//     object_in_use (a slot still held by a walsender that is going away), 40001
//     serialization_failure, 40P01 deadlock_detected; no SQLSTATE and the connection
//     lost (refused, reset, walsender timeout, server closed it).
//   permanent: everything else, e.g. 28xxx authentication and 42501 privilege
//     (kAuthentication), 42704 undefined object (a missing slot or publication), 42P01,
//     42601, 3D000 (kConfiguration), 55000 object_not_in_prerequisite_state (an
//     invalidated slot, wal_level) and other server errors (kSourceState).
ErrorClass classify_error(std::string_view sqlstate, bool connection_lost);

// The first line of a libpq message, without libpq's "FATAL:  "/"ERROR:  " prefix.
std::string first_line(std::string message);

// libpq offers no call that returns the SQLSTATE of an error the server sent while a
// connection was being set up. With PQERRORS_VERBOSE it writes it into the message in a
// fixed form, "SEVERITY:  XXXXX: message" (pqBuildErrorMessage3): this takes the first
// such code out of `msg` and returns it ("" when there is none). The words of the message
// are never looked at.
std::string take_sqlstate(std::string& msg);

// The Error for a failed result (or, with `res` null, for the connection's last error):
// "<context>: <server's message>", classified by classify_error.
Error error_from_result(const PGresult* res, PGconn* conn, const std::string& context);

}  // namespace pgseed::pg
