// pgseed::Error — the one exception type the library throws.
#pragma once

#include <stdexcept>
#include <string>

namespace pgseed {

// What kind of failure it is; the CLI maps each category to its own exit code.
enum class ErrorCategory {
  kConnection,      // server unreachable, connection dropped
  kAuthentication,  // wrong password, role may not log in / replicate
  kConfiguration,   // bad option, unknown store scheme, missing publication or table
  kSourceState,     // wal_level, slot in use, slot invalidated, server version
  kStore,           // store unreadable, unwritable, corrupt, or from another source
  kDecode,          // malformed data from the server
  kInternal,        // a bug in pgseed
};

const char* category_name(ErrorCategory c);

// Thrown by every library call on failure. The message is one line, never holds a
// password, and says what to do where that is known.
//
// Thread-safety: immutable once made; any number of threads may read one Error at once
// (an exception_ptr carrying it may be rethrown on another thread).
class Error : public std::runtime_error {
 public:
  Error(ErrorCategory category, const std::string& message, std::string sqlstate = {},
        bool transient = false)
      : std::runtime_error(message),
        category_(category),
        sqlstate_(std::move(sqlstate)),
        transient_(transient) {}

  ErrorCategory category() const { return category_; }
  // The server's SQLSTATE when the failure came from PostgreSQL, else empty.
  const std::string& sqlstate() const { return sqlstate_; }
  // True when the same call may succeed later with nothing changed by anyone: the
  // connection was lost or refused, the server is shutting down, crashed or is starting
  // up, it has too many connections, the slot is still held by a walsender that is going
  // away, a serialization failure or deadlock. False for everything that needs someone to
  // act (a missing or invalidated slot, authentication, privileges, a missing publication,
  // configuration, the store). `Sync` in follow mode retries exactly the transient ones.
  bool transient() const { return transient_; }

 private:
  ErrorCategory category_;
  std::string sqlstate_;
  bool transient_;
};

}  // namespace pgseed
