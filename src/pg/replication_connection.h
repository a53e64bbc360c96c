// ReplicationConnection: a walsender connection (replication=database) and the commands
// of the streaming replication protocol pgseed uses, modelled on PostgreSQL's
// libpqwalreceiver interface. Every libpq call of slot creation and streaming is here.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pg/connection.h"
#include "pg/copy_buffer.h"
#include "pgseed/lsn.h"

namespace pgseed::pg {

// IDENTIFY_SYSTEM.
struct SystemIdentity {
  std::string system_id;  // the cluster's system identifier (decimal text, as the server sends it)
  uint32_t timeline = 0;
  Lsn xlogpos;            // the current WAL flush position
  std::string database;   // the database the connection is to
};

// One line of a timeline history file: timeline `tli` ended at `switchpoint`, where its
// child (the next line's, or the history's own timeline) began.
struct TimelineSwitch {
  uint32_t tli = 0;
  Lsn switchpoint;
};

// Parses a timeline history file (PostgreSQL's TLI.history: "parentTLI\tswitchpoint\treason"
// lines, '#' comments, blank lines). Throws Error(kDecode) on a malformed line.
std::vector<TimelineSwitch> parse_timeline_history(std::string_view content);

// What CREATE_REPLICATION_SLOT does with the snapshot at the slot's consistent point.
enum class SnapshotAction {
  kExport,   // export it (valid while this connection runs no further command)
  kUse,      // use it in this connection's open transaction
  kNothing,  // neither
};

struct SlotOptions {
  bool temporary = false;  // dropped when the connection closes
  SnapshotAction snapshot = SnapshotAction::kExport;
  bool failover = false;   // synchronized to standbys (PostgreSQL 17+)
  std::string plugin = "pgoutput";
};

// CREATE_REPLICATION_SLOT's answer.
struct CreatedSlot {
  std::string slot_name;
  Lsn consistent_point;
  std::string snapshot_name;  // empty unless SnapshotAction::kExport
};

// How create_slot waits for the server's answer. On a hot standby (PostgreSQL 16+) the
// answer can take long: the slot is consistent only once the primary has logged a
// running-xacts record and the standby has replayed it.
struct SlotCreationWait {
  // Raised (by any thread): the creation is cancelled (PQcancel) and create_slot throws
  // Error with SQLSTATE 57014; a slot that the server finished creating before the cancel
  // arrived is dropped first, so that none is left either way.
  const std::atomic<bool>* stop = nullptr;
  // Called right after the command is sent, then about once a second while the server has
  // not answered (e.g. to ask the primary for a running-xacts record, or to answer another
  // connection's keepalives). It must not use this connection. What it throws ends the
  // wait (the connection is then unusable and is to be closed: its slot goes with it).
  std::function<void()> while_waiting;
};

// pgoutput's options for START_REPLICATION.
struct LogicalOptions {
  uint32_t proto_version = 1;
  std::vector<std::string> publication_names;  // as stored (quoted here)
  // streaming 'on' (proto_version 2+, PostgreSQL 14+): a transaction whose decoded changes
  // outgrow the server's logical_decoding_work_mem is sent while in progress, in segments
  // (StreamStart ... StreamStop), then StreamCommit or StreamAbort.
  bool streaming = false;
};

// Move-only. Not thread-safe: one thread uses it at a time (StreamApply hands it to its
// helper thread during a store commit, and takes it back after).
class ReplicationConnection {
 public:
  // Connects with replication=database and pgseed's session settings; throws Error as
  // Connection::open does.
  static ReplicationConnection open(const std::string& conninfo);

  ReplicationConnection(ReplicationConnection&&) noexcept = default;
  ReplicationConnection& operator=(ReplicationConnection&&) noexcept = default;

  SystemIdentity identify_system();

  // TIMELINE_HISTORY tli: how the server's timeline `tli` (> 1) came about, oldest first.
  std::vector<TimelineSwitch> timeline_history(uint32_t tli);

  // Creates a logical slot. Throws Error (55006/42710 when it exists, ...); on error no
  // slot was created (see SlotCreationWait for a cancelled creation).
  CreatedSlot create_slot(const std::string& name, const SlotOptions& options,
                          const SlotCreationWait& wait = {});

  // Whether the server is a hot standby (pg_is_in_recovery(); a plain query, which a
  // replication=database connection takes between replication commands).
  bool in_recovery();
  // current_setting(name) (a plain query, as in_recovery()).
  std::string setting(const std::string& name);

  // ALTER_REPLICATION_SLOT name (FAILOVER b); PostgreSQL 17+ (throws kSourceState before).
  void alter_slot_failover(const std::string& name, bool failover);

  // START_REPLICATION SLOT slot LOGICAL start (options): the connection is streaming
  // afterwards. Throws Error classified by SQLSTATE (42704: no such slot; 55006: slot in
  // use, transient; 55000: the slot cannot be used, e.g. invalidated).
  void start_logical(const std::string& slot, Lsn start, const LogicalOptions& options);

  // While streaming: the next CopyData message already read from the socket into `msg`
  // (true), or false when none is there yet (then wait_readable() and ask again). Never
  // blocks. Throws Error when the stream is over: the server ended it (while shutting
  // down: transient, kConnection), ended it with an error (classified by its SQLSTATE,
  // e.g. 57P01 transient, 42704 for a dropped publication permanent), or the connection
  // was lost (transient, kConnection).
  bool receive(CopyBuffer& msg);

  // Waits up to `timeout` for the socket to be readable, then reads what arrived (also
  // when nothing did). Returns whether it was readable. Throws Error (transient,
  // kConnection) when the connection is lost.
  bool wait_readable(std::chrono::milliseconds timeout);
  // Reads what the socket has without waiting (after polling socket() oneself).
  void read_available();
  // The socket, to poll together with other descriptors.
  int socket() const;

  // Sends a standby status update: write/flush/apply positions, asking for an immediate
  // keepalive when `reply_requested`. Throws Error (transient, kConnection) on failure.
  void send_status(Lsn write, Lsn flush, Lsn apply, bool reply_requested);

  // Ends the stream cleanly (CopyDone), so that the server has processed the last status
  // update before the connection closes, and drains what the server still had in flight
  // until it ends the COPY; gives up after `limit`. Best effort, never throws: the
  // connection is to be closed afterwards either way.
  void end_stream(std::chrono::milliseconds limit = std::chrono::seconds(10));

  int server_version() const { return conn_.server_version(); }

 private:
  explicit ReplicationConnection(Connection conn) : conn_(std::move(conn)) {}
  Connection conn_;
};

}  // namespace pgseed::pg
