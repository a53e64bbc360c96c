// Operating a replica: status (health check), verify (compare with the source), drop.
//
// Thread-safety: each call opens connections and store handles of its own, so calls may run
// on several threads at once, and while a Sync writes the store, except where a call says
// it needs the store to itself (verify).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pgseed/log.h"
#include "pgseed/lsn.h"
#include "pgseed/replica.h"

namespace pgseed {

// A condition worth an operator's attention. `code` is stable (README lists them all);
// `message` says what to do.
struct StatusWarning {
  std::string code;     // e.g. "slot_inactive", "retained_wal", "slot_missing"
  std::string message;  // one line
};

struct StatusReport {
  ReplicaState state;
  std::vector<std::pair<std::string, uint64_t>> tables;  // name, row count
  std::string last_commit_time;  // state.last_commit_time as RFC 3339 UTC
                                 // ("2026-12-05T20:11:30.2422Z"); empty if none
  double last_commit_unix = -1;  // the same in seconds since the epoch; -1 if none
  double time_unix = 0;          // when the report was made

  // With a source:
  bool source_checked = false;  // true once the source was read successfully
  std::string source_error;     // the source could not be read: why (one line); the
                                // store part of the report is still filled in
  Lsn server_lsn;               // the source's current WAL position (replay LSN on a standby)
  bool slot_exists = false;
  bool slot_active = false;
  bool slot_invalid = false;    // wal_status "lost": it can never catch up
  Lsn confirmed_flush_lsn, restart_lsn;  // Lsn() (not valid()) when unknown
  std::string wal_status;                // pg_replication_slots.wal_status; empty when unknown
  int64_t lag_bytes = -1;       // the source's WAL position minus the applied LSN; -1 unknown
  int64_t retained_bytes = -1;  // WAL the slot keeps on the source; -1 unknown
  // Failover slots (PostgreSQL 17+; all false/empty before):
  bool slot_failover = false;   // the slot was made with FAILOVER (sync --failover)
  bool source_is_standby = false;
  // The source is a standby whose slot of the store's name is a copy synchronized from
  // the primary (sync_replication_slots = on), and `slot_sync_ready` once it is no longer
  // temporary: a promotion of that standby keeps the slot, and sync can continue there.
  bool slot_synced = false;
  bool slot_sync_ready = false;
  // The primary's synchronized_standby_slots: the physical slots of the standbys that must
  // have received WAL before a failover slot's consumer sees it (empty: none waited for).
  std::string synchronized_standby_slots;
  // Replay lag: 0 when caught up (lag_bytes == 0: the applied LSN has reached the
  // server's position); else the time since the last applied commit (an approximation
  // of the age of the oldest unapplied commit, from above); -1 when unknown (no source,
  // or nothing applied yet).
  double lag_seconds = -1;

  bool healthy = false;
  std::vector<StatusWarning> warnings;
};

// What status(), verify() and drop() work on. Every one takes a source and a store, named
// as in SyncOptions (source first), so that the three read alike.
struct StatusOptions {
  std::string source;  // conninfo; empty: the store alone (no slot, no lag)
  std::string store;   // "sqlite:PATH", "rocksdb:PATH" or PATH
  // A slot retaining more WAL than this makes the report unhealthy.
  int64_t max_retained_bytes = int64_t(1) << 30;
};

// Reads the store and, with a `source` conninfo, the slot on the source. Unhealthy:
// the copy is unfinished, the slot is missing or invalidated, the publication is gone,
// or the slot retains more than `max_retained_bytes` of WAL. Throws Error(kStore) when
// the store cannot be read; a source that cannot be read does not throw: source_error
// says why and the report is unhealthy. Changes nothing, on the source or in the store.
StatusReport status(const StatusOptions& options);

struct TableComparison {
  std::string table;
  uint64_t source_rows = 0, store_rows = 0;
  uint64_t missing = 0, extra = 0, different = 0;
  std::vector<std::string> examples;  // a few keys, e.g. "missing (42)"
  bool equal() const { return missing == 0 && extra == 0 && different == 0; }
};

struct VerifyReport {
  Lsn at;  // the store and the source were compared as of this WAL position
  std::vector<TableComparison> tables;
  bool equal() const {
    for (const auto& t : tables)
      if (!t.equal()) return false;
    return true;
  }
};

struct VerifyOptions {
  std::string source;  // conninfo
  std::string store;
  // A hot standby (16+) as `source`: the primary's conninfo (optional), as
  // SyncOptions::primary says.
  std::string primary;
  // An edge of a NATS stream (a store `sync --from` made; it has no slot): the stream it
  // follows, "nats://h1:p1,h2:p2,.../NAME", as SyncOptions::from. Required for an edge,
  // refused for a store with a slot (Error kConfiguration).
  std::string from;
  // An edge: how long to wait for the stream to reach P while it gets no new message
  // before giving up (Error kSourceState: its hub is not running).
  int hub_wait_seconds = 60;
};

// Compares every table of the store with the source, exactly, even while the source is
// written: it takes a snapshot of the source at a WAL position P (a temporary slot's
// exported snapshot), catches the store up to exactly P through the store's slot, and
// compares row hashes. Needs the store not to be in use by a running sync.
// An edge of a NATS stream is caught up to P through the stream (`from`) instead: every
// transaction the hub published that committed before P, none after. The edge knows it has
// them all once the stream holds a message at or past P (the hub publishes a position
// message when its source is quiet); it waits for one as long as new messages come, at most
// `hub_wait_seconds` without any. Nothing on the source but the temporary slot is touched
// (an edge has no slot; the hub's is never read). When the edge has to restore a snapshot
// on the way that is newer than P (the hub copied tables again), it takes a new snapshot of
// the source and tries again (three times at most, then Error kSourceState).
// A hot standby (16+) as `source`: the temporary slot waits for the primary's
// running-xacts record, which `primary` (its conninfo, optional) is asked for, as
// SyncOptions::primary says.
VerifyReport verify(const VerifyOptions& options, const LogSink& log = {});

struct DropOptions {
  std::string source;  // conninfo
  std::string store;
  bool delete_store = false;  // remove the store too, once its slot is gone
};

// Drops the store's slot and the publication pgseed created; refuses an active slot
// (Error kSourceState, nothing dropped). With `delete_store`, removes the store too.
void drop(const DropOptions& options, const LogSink& log = {});

// Drops logical slot `slot` on the source without a store (an orphaned slot whose store is
// gone). Refuses (Error kSourceState) an active slot, a physical slot or one of another
// output plugin than pgoutput; Error(kConfiguration) when there is no such slot.
void drop_slot(const std::string& source, const std::string& slot, const LogSink& log = {});

}  // namespace pgseed
