// CopyReader: the rows of a `COPY ... TO STDOUT` on a Connection, one line at a time.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "pg/connection.h"
#include "pg/copy_buffer.h"

typedef struct pg_cancel PGcancel;

namespace pgseed::pg {

// Reads COPY output on one connection, for as many COPYs (one after another) as wanted.
// Thread safety: start() and next() on one thread at a time (the connection's user);
// cancel() from any thread, at any time.
class CopyReader {
 public:
  // `conn` must outlive the reader. The connection's cancel handle is taken now, so that
  // cancel() never touches the connection itself (PQcancel is thread-safe; the connection
  // is not).
  explicit CopyReader(Connection& conn);
  ~CopyReader();
  CopyReader(const CopyReader&) = delete;
  CopyReader& operator=(const CopyReader&) = delete;

  // Runs `copy_sql` (a COPY ... TO STDOUT); `what` names it in errors ("copying t").
  // Throws Error when the server refuses it. A reader destroyed before next() returned
  // false leaves the connection inside the COPY: only fit to be closed.
  void start(const std::string& copy_sql, std::string what);

  // The next line (one row in COPY text form, ending in '\n') into `line`, replacing what
  // it held; false when the COPY is over and its final result says it succeeded. Throws
  // Error when it failed, was cancelled (SQLSTATE 57014) or the connection was lost.
  bool next(CopyBuffer& line);

  // Calls fn(std::string_view line) for each remaining line.
  template <typename Fn>
  void for_each_line(Fn&& fn) {
    CopyBuffer line;
    while (next(line)) fn(line.text());
  }

  // Asks the server to cancel the statement the connection runs (the COPY, while one
  // runs). Any thread; best effort: false when the request could not be sent.
  bool cancel();

 private:
  struct CancelDeleter {
    void operator()(PGcancel* c) const;
  };
  Connection& conn_;
  std::unique_ptr<PGcancel, CancelDeleter> cancel_;
  std::string what_;
  bool active_ = false;
};

}  // namespace pgseed::pg
