#include "pg/replication_connection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <memory>

#include "decode/replication_frame.h"
#include "model/identifiers.h"
#include "pg/server_error.h"
#include "pg/text_value.h"

namespace pgseed::pg {

namespace {

// A string literal of the replication command grammar: '...' with quotes doubled (it has
// no E'' form, so PQescapeLiteral's output would not do).
std::string command_literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

const char* snapshot_action(SnapshotAction a) {
  switch (a) {
    case SnapshotAction::kExport: return "'export'";
    case SnapshotAction::kUse: return "'use'";
    case SnapshotAction::kNothing: return "'nothing'";
  }
  return "'nothing'";
}

// The connection is gone (or unusable): always transient, whatever libpq's status says.
Error lost(PGconn* conn, const std::string& context) {
  Error e = error_from_result(nullptr, conn, context);
  return Error(ErrorCategory::kConnection, e.what(), e.sqlstate(), /*transient=*/true);
}

std::string value(const Result& r, int col) {
  return PQgetisnull(r.get(), 0, col) ? std::string() : std::string(PQgetvalue(r.get(), 0, col));
}

void expect_row(const Result& r, int columns, const char* command) {
  if (PQntuples(r.get()) != 1 || PQnfields(r.get()) < columns)
    throw Error(ErrorCategory::kDecode, std::string("unexpected answer to ") + command);
}

}  // namespace

ReplicationConnection ReplicationConnection::open(const std::string& conninfo) {
  return ReplicationConnection(Connection::open(conninfo, Connection::Kind::kReplication));
}

SystemIdentity ReplicationConnection::identify_system() {
  Result r = conn_.exec("IDENTIFY_SYSTEM", "IDENTIFY_SYSTEM");
  expect_row(r, 4, "IDENTIFY_SYSTEM");
  SystemIdentity id;
  id.system_id = value(r, 0);
  id.timeline = parse_uint32(value(r, 1), "the timeline (IDENTIFY_SYSTEM)");
  id.xlogpos = Lsn::parse(value(r, 2));
  id.database = value(r, 3);
  return id;
}

std::vector<TimelineSwitch> parse_timeline_history(std::string_view content) {
  std::vector<TimelineSwitch> out;
  while (!content.empty()) {
    size_t nl = content.find('\n');
    std::string_view line = content.substr(0, nl);
    content = nl == std::string_view::npos ? std::string_view() : content.substr(nl + 1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#' || line == "\r") continue;
    // "parentTLI<ws>switchpoint<ws>reason": whitespace-separated, as xlogreader's
    // readTimeLineHistory reads it.
    size_t a = line.find_first_of(" \t");
    if (a == std::string_view::npos)
      throw Error(ErrorCategory::kDecode, "malformed timeline history line: " + std::string(line));
    std::string_view rest = line.substr(a);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    std::string_view lsn = rest.substr(0, rest.find_first_of(" \t\r"));
    TimelineSwitch sw;
    sw.tli = parse_uint32(line.substr(0, a), "a timeline history's timeline");
    try {
      sw.switchpoint = Lsn::parse(lsn);
    } catch (const Error&) {
      throw Error(ErrorCategory::kDecode, "malformed timeline history line: " + std::string(line));
    }
    if (!out.empty() && sw.tli <= out.back().tli)
      throw Error(ErrorCategory::kDecode, "timeline history is not in increasing order");
    out.push_back(sw);
  }
  return out;
}

std::vector<TimelineSwitch> ReplicationConnection::timeline_history(uint32_t tli) {
  Result r = conn_.exec("TIMELINE_HISTORY " + std::to_string(tli), "TIMELINE_HISTORY");
  expect_row(r, 2, "TIMELINE_HISTORY");
  // The file's bytes as they are (typed bytea, sent raw: libpqwalreceiver reads it so too).
  return parse_timeline_history(
      std::string_view(PQgetvalue(r.get(), 0, 1), size_t(PQgetlength(r.get(), 0, 1))));
}

CreatedSlot ReplicationConnection::create_slot(const std::string& name, const SlotOptions& o,
                                               const SlotCreationWait& wait) {
  if (o.failover && conn_.server_version() < 170000)
    throw Error(ErrorCategory::kSourceState, "failover slots need PostgreSQL 17 or later");
  std::string cmd = "CREATE_REPLICATION_SLOT " + quote_ident(name) +
                    (o.temporary ? " TEMPORARY" : "") + " LOGICAL " + quote_ident(o.plugin) +
                    " (SNAPSHOT " + snapshot_action(o.snapshot) +
                    (o.failover ? ", FAILOVER true" : "") + ")";
  const std::string what = "creating replication slot " + name;
  PGconn* conn = conn_.get();
  // Sent asynchronously, so that a stop can cancel it and `while_waiting` runs meanwhile.
  // The cancel handle is taken before: PQcancel then never touches the connection.
  std::unique_ptr<PGcancel, void (*)(PGcancel*)> cancel(PQgetCancel(conn), PQfreeCancel);
  if (!cancel) throw Error(ErrorCategory::kConnection, "cannot make a cancel request for the connection");
  if (PQsendQuery(conn, cmd.c_str()) != 1) throw lost(conn, what);
  bool cancelled = false;
  auto next_call = std::chrono::steady_clock::now();
  for (;;) {
    if (PQconsumeInput(conn) == 0) throw lost(conn, what);
    if (PQisBusy(conn) == 0) break;
    if (!cancelled && wait.stop && wait.stop->load()) {
      char err[256];
      PQcancel(cancel.get(), err, sizeof err);  // when it fails, the answer comes as it would
      cancelled = true;
    }
    auto now = std::chrono::steady_clock::now();
    if (!cancelled && wait.while_waiting && now >= next_call) {
      wait.while_waiting();
      next_call = now + std::chrono::seconds(1);
    }
    pollfd pfd{PQsocket(conn), POLLIN, 0};
    poll(&pfd, 1, 100);
  }
  Result r(PQgetResult(conn));
  while (Result more{PQgetResult(conn)}) {
  }
  const bool created = PQresultStatus(r.get()) == PGRES_TUPLES_OK;
  const Error cancelled_error(ErrorCategory::kConnection, what + ": cancelled", "57014");
  if (!created) {
    Error e = error_from_result(r.get(), conn, what);
    throw cancelled ? cancelled_error : e;
  }
  if (cancelled) {
    // The slot was made before the cancel arrived: it goes again (a temporary one would go
    // with the connection anyway).
    conn_.exec("DROP_REPLICATION_SLOT " + quote_ident(name), ("dropping replication slot " + name).c_str());
    throw cancelled_error;
  }
  expect_row(r, 3, "CREATE_REPLICATION_SLOT");
  CreatedSlot s;
  s.slot_name = value(r, 0);
  s.consistent_point = Lsn::parse(value(r, 1));
  s.snapshot_name = value(r, 2);
  return s;
}

bool ReplicationConnection::in_recovery() {
  Result r = conn_.exec("SELECT pg_is_in_recovery()", "checking whether the source is a standby");
  expect_row(r, 1, "pg_is_in_recovery()");
  return value(r, 0) == "t";
}

std::string ReplicationConnection::setting(const std::string& name) {
  Result r = conn_.exec("SELECT current_setting(" + conn_.quote_literal(name) + ")",
                        ("reading setting " + name).c_str());
  expect_row(r, 1, "current_setting()");
  return value(r, 0);
}

void ReplicationConnection::alter_slot_failover(const std::string& name, bool failover) {
  if (conn_.server_version() < 170000)
    throw Error(ErrorCategory::kSourceState, "failover slots need PostgreSQL 17 or later");
  conn_.exec("ALTER_REPLICATION_SLOT " + quote_ident(name) + " (FAILOVER " +
                 (failover ? "true" : "false") + ")",
             ("altering replication slot " + name).c_str());
}

void ReplicationConnection::start_logical(const std::string& slot, Lsn start,
                                          const LogicalOptions& o) {
  std::string names;
  for (const auto& p : o.publication_names) names += (names.empty() ? "" : ",") + quote_ident(p);
  std::string cmd = "START_REPLICATION SLOT " + quote_ident(slot) + " LOGICAL " + start.str() +
                    " (proto_version " + command_literal(std::to_string(o.proto_version)) +
                    ", publication_names " + command_literal(names) +
                    (o.streaming ? ", streaming 'on'" : "") + ")";
  Result r(PQexec(conn_.get(), cmd.c_str()));
  if (PQresultStatus(r.get()) != PGRES_COPY_BOTH)
    throw error_from_result(r.get(), conn_.get(), "starting replication from slot " + slot);
}

bool ReplicationConnection::receive(CopyBuffer& msg) {
  char* buf = nullptr;
  int len = PQgetCopyData(conn_.get(), &buf, /*async=*/1);
  if (len > 0) {
    msg.adopt(buf, size_t(len));
    return true;
  }
  if (len == 0) return false;
  if (len == -2) throw lost(conn_.get(), "replication connection lost");
  // -1: the server ended the COPY; its result says why.
  Result r(PQgetResult(conn_.get()));
  if (!r) throw lost(conn_.get(), "replication connection lost");
  if (PQresultStatus(r.get()) == PGRES_COMMAND_OK)
    // A walsender ends the stream by itself (CommandComplete without our CopyDone) when
    // the server shuts down (WalSndDone).
    throw Error(ErrorCategory::kConnection,
                "the server ended replication (it is shutting down or restarting)", "",
                /*transient=*/true);
  throw error_from_result(r.get(), conn_.get(), "the server ended replication");
}

bool ReplicationConnection::wait_readable(std::chrono::milliseconds timeout) {
  pollfd pfd{PQsocket(conn_.get()), POLLIN, 0};
  bool readable = poll(&pfd, 1, int(timeout.count())) > 0;
  read_available();
  return readable;
}

void ReplicationConnection::read_available() {
  if (PQconsumeInput(conn_.get()) == 0) throw lost(conn_.get(), "replication connection lost");
}

int ReplicationConnection::socket() const { return PQsocket(conn_.get()); }

void ReplicationConnection::send_status(Lsn write, Lsn flush, Lsn apply, bool reply_requested) {
  std::string msg = encode_standby_status(write, flush, apply, pg_now_micros(), reply_requested);
  if (PQputCopyData(conn_.get(), msg.data(), int(msg.size())) != 1 || PQflush(conn_.get()) != 0)
    throw lost(conn_.get(), "replication connection lost (sending status)");
}

void ReplicationConnection::end_stream(std::chrono::milliseconds limit) {
  PGconn* conn = conn_.get();
  if (PQputCopyEnd(conn, nullptr) != 1) return;
  PQflush(conn);
  // Drain what the server still had in flight until it ends the COPY (bounded).
  auto deadline = std::chrono::steady_clock::now() + limit;
  bool ended = false;
  while (!ended && std::chrono::steady_clock::now() < deadline) {
    char* buf = nullptr;
    int len = PQgetCopyData(conn, &buf, /*async=*/1);
    if (buf) PQfreemem(buf);
    if (len < 0) {
      ended = true;
    } else if (len == 0) {
      pollfd pfd{PQsocket(conn), POLLIN, 0};
      poll(&pfd, 1, 100);
      if (PQconsumeInput(conn) == 0) break;
    }
  }
  if (ended)
    while (Result r{PQgetResult(conn)}) {
    }
}

}  // namespace pgseed::pg
