#include "pg/copy_reader.h"

#include <libpq-fe.h>

#include <optional>

#include "pg/server_error.h"

namespace pgseed::pg {

void CopyReader::CancelDeleter::operator()(PGcancel* c) const { PQfreeCancel(c); }

CopyReader::CopyReader(Connection& conn) : conn_(conn), cancel_(PQgetCancel(conn.get())) {
  if (!cancel_) throw Error(ErrorCategory::kConnection, "cannot make a cancel request for the connection");
}

CopyReader::~CopyReader() = default;

void CopyReader::start(const std::string& copy_sql, std::string what) {
  what_ = std::move(what);
  Result r(PQexec(conn_.get(), copy_sql.c_str()));
  if (PQresultStatus(r.get()) != PGRES_COPY_OUT) throw error_from_result(r.get(), conn_.get(), what_);
  active_ = true;
}

bool CopyReader::next(CopyBuffer& line) {
  line.reset();
  if (!active_) return false;
  char* buf = nullptr;
  int len = PQgetCopyData(conn_.get(), &buf, /*async=*/0);
  if (len > 0) {
    line.adopt(buf, size_t(len));
    return true;
  }
  active_ = false;
  if (len == -2) throw error_from_result(nullptr, conn_.get(), what_);
  // -1: the COPY is over; its result says how it ended.
  Result end(PQgetResult(conn_.get()));
  bool ok = PQresultStatus(end.get()) == PGRES_COMMAND_OK;
  std::optional<Error> failed;
  if (!ok) failed = error_from_result(end.get(), conn_.get(), what_);
  // The connection is ready for its next command once every result is taken.
  while (Result more{PQgetResult(conn_.get())}) {
  }
  if (failed) throw *failed;
  return false;
}

bool CopyReader::cancel() {
  char err[256];
  return PQcancel(cancel_.get(), err, sizeof err) == 1;
}

}  // namespace pgseed::pg
