// pgseed::Sync — bootstrap a replica and keep it current. The one entry point of the
// library's write side; the CLI's `sync` is a thin wrapper over it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pgseed/log.h"
#include "pgseed/lsn.h"

namespace pgseed {

// What a change did to the rows of its table.
enum class ChangeKind {
  kInsert,
  kUpdate,    // key: the row's key after the update. When the source sent the old row too
              // (the key changed, or REPLICA IDENTITY FULL), a kDelete of the old key
              // comes first: a cache drops both.
  kDelete,
  kTruncate,  // every row of the table; no key
};

// "insert", "update", "delete" or "truncate".
const char* to_string(ChangeKind kind);

// One applied source transaction, as the change callback sees it.
struct AppliedTransaction {
  Lsn commit_lsn;
  std::string commit_time;  // ISO 8601, UTC
  struct Change {
    std::string table;  // "schema.table", quoted as PostgreSQL needs
    ChangeKind kind = ChangeKind::kInsert;
    // Key values in PostgreSQL text form, in key order (what Replica::lookup takes); every
    // column for a table without a key; empty for kTruncate.
    std::vector<std::string> key;
  };
  std::vector<Change> changes;
};

// Where a sync is; delivered about once a second to SyncOptions::on_progress.
struct Progress {
  enum class Phase { kCopy, kStream } phase = Phase::kCopy;
  double elapsed_seconds = 0;  // since the phase began

  // kCopy: per table and overall. Estimates come from the source's catalog (reltuples,
  // relation size) and may be -1 (unknown) or off; done rows are exact.
  struct Table {
    std::string name;
    uint64_t rows = 0;
    uint64_t bytes = 0;  // COPY text bytes received
    int64_t estimated_rows = -1;
    int64_t estimated_bytes = -1;
    bool done = false;
  };
  std::vector<Table> tables;
  uint64_t rows = 0;
  uint64_t bytes = 0;
  int64_t estimated_rows = -1;
  int64_t estimated_bytes = -1;

  // kStream
  uint64_t transactions = 0;  // applied in this run
  double transactions_per_second = 0;  // over the last interval
  Lsn applied_lsn;
  int64_t lag_bytes = -1;     // server WAL end minus applied LSN, -1 when unknown
  // Seconds since the source committed the oldest transaction received but not yet
  // durably applied: 0 when everything received is durable (an idle replica lags 0, not
  // the time since its last commit); -1 when unknown. Source and replica clocks are
  // compared, so skew between them shows (never below 0).
  double lag_seconds = -1;
};

// SyncOptions::split_tables_larger_than's default: off. Measured on 2 cores (1M-row table,
// -j 2, SQLite and RocksDB, server on the same machine), splitting did not shorten the
// copy (the one store writer and the server's COPY already keep both cores busy) and cost
// ~5-15% more CPU (TID range scans do not use the server's bulk-read buffer ring, and the
// writer inserts at two places in the key order) and ~7-11 MB of peak RSS (a second worker
// filling batches). It can pay where the writer outpaces one COPY stream and cores are to
// spare (several cores, or a remote source).
inline constexpr uint64_t kDefaultSplitTablesLargerThan = 0;

struct SyncOptions {
  // libpq conninfo (key=value or URI), or a bare database name; empty: libpq's defaults
  // and PG* variables alone, as psql does.
  std::string source;
  std::string store;        // "sqlite:PATH", "rocksdb:PATH" or PATH
  // When `source` is a hot standby (PostgreSQL 16+): its primary's conninfo, optional. A
  // slot made on a standby is ready only once the primary has logged a running-xacts
  // record and the standby has replayed it; with `primary`, pgseed asks the primary for
  // one (SELECT pg_log_standby_snapshot(), which needs a superuser or a grant of EXECUTE)
  // instead of waiting for the primary to log one by itself (about every 15 s while it is
  // written; an idle primary may log none for long). Nothing else is done on the primary.
  std::string primary;
  std::string publication;  // use this publication (created for `tables` if missing)
  // Names as SQL writes them: public."Order Items". On a later run, a list that differs
  // from the store's publication is refused (Error kConfiguration), except that tables
  // may be added to a publication pgseed created: it is extended (ALTER PUBLICATION ...
  // ADD TABLE) and the new tables are copied before streaming resumes.
  std::vector<std::string> tables;
  // A first run with neither `publication` nor `tables` is refused unless this is set:
  // pgseed then creates a FOR ALL TABLES publication, and PostgreSQL refuses UPDATE and
  // DELETE on every table without a replica identity while it exists (for every client).
  bool all_tables = false;
  std::string slot;         // default: the store's, or a generated pgseed_<host>_<random>
  // PostgreSQL 17+, a primary: the slot is a failover slot (created with FAILOVER; an
  // existing store's slot is switched with ALTER_REPLICATION_SLOT before streaming), so
  // that standbys with sync_replication_slots = on keep a copy of it that a promotion
  // keeps. Without it a later run leaves the slot as it is. Error kSourceState before 17,
  // kConfiguration on a standby.
  bool failover = false;
  int jobs = 0;             // copy connections; 0 = number of cores
  // A regular table whose heap (pg_relation_size) is larger than this many bytes is copied
  // in parts, ranges of heap blocks read by several copy connections at once under the same
  // snapshot (about size / this many parts, at least 2, at most 4 x jobs); 0 = copy every
  // table whole (the default, see kDefaultSplitTablesLargerThan). Partitioned tables
  // published via their root are never split; nothing is split with one job.
  uint64_t split_tables_larger_than = kDefaultSplitTablesLargerThan;
  bool follow = false;      // keep streaming until stop(); else stop when caught up
  // PostgreSQL 14+: the server sends a transaction whose decoded changes outgrow its
  // logical_decoding_work_mem while it is still in progress, in segments (pgoutput
  // protocol version 2, streaming 'on'), instead of first spilling it to files of its own
  // and sending it at its commit. pgseed keeps the segments in a directory beside the
  // store (the store's path + ".stream-spool", removed when the sync ends and at the next
  // start after a crash) and applies the transaction when it commits, as any other: at its
  // commit LSN, in one store transaction, or not at all when it aborts. false: protocol
  // version 1 (each transaction sent once committed). Ignored before PostgreSQL 14.
  bool stream_in_progress = true;
  // Following: how often the store's tables are compared with the source's catalog, so
  // that DDL no row change followed (ADD/DROP COLUMN, DROP TABLE, ...) reaches the store
  // (pgoutput describes a table only before its next row change). 0: never. A one-shot
  // run compares once, at its end, whatever this says.
  double schema_check_interval_seconds = 30;
  // Tables (names as SQL writes them) to copy again, online, under a fresh snapshot
  // before streaming on (`pgseed resync`); their old rows stay readable until the new
  // copy is in place. The store must hold them.
  std::vector<std::string> resync_tables;
  // Recover a store whose slot is gone or invalidated (max_slot_wal_keep_size, idle
  // timeout): create the slot anew and copy every table again, each under its own
  // snapshot, then stream from the new slot. Old rows stay readable until each table's
  // new copy is in place; an interrupted reseed continues where it stopped.
  bool reseed = false;
  // Fan-out hub: NATS servers, "nats://h1:p1,h2:p2,...". Every transaction applied to the
  // store is also published, in commit order, to the JetStream stream `stream` (created if
  // missing, one replica per server named, at most 3), and a snapshot of the store to
  // `stream`-snapshots when it has none and after tables are copied again. The slot is
  // confirmed only up to what the store holds durably and JetStream acknowledged.
  // src/fanout/ENCODING.md describes the messages.
  std::string publish;
  std::string stream;
  // Fan-out hub: seconds between snapshots of the store published besides those above
  // (0: none). After each snapshot the hub keeps the two newest and removes older ones, and
  // the changes only they needed, from both streams: this is the streams' retention.
  double snapshot_every_seconds = 3600;
  // Fan-out edge: "nats://h1:p1,h2:p2,.../NAME". The store follows the hub that publishes
  // stream NAME instead of a PostgreSQL source (no `source`, no slot of its own): a new
  // store restores the newest snapshot, then applies the stream from the snapshot's LSN,
  // skipping transactions at or below the store's LSN. One-shot applies what the stream
  // held at the start; follow runs until stop(). A store that follows a stream already is
  // checked against the stream's source (Error kStore: another source).
  std::string from;
  LogSink log;              // where progress and warnings go; may be empty
  // Called on the sync's thread after each transaction is durably stored (also on an edge,
  // `from`; not for rows that came in a copy or a restored snapshot).
  std::function<void(const AppliedTransaction&)> on_commit;
  // Called on the sync's thread about once a second (on an edge, Progress::lag_bytes is -1:
  // an edge never asks the source).
  std::function<void(const Progress&)> on_progress;
};

// Splits a --tables style list ("a, public.\"B,c\"") into names as SQL writes them,
// each schema-qualified ("public.a", "public.\"B,c\""). Throws Error(kConfiguration).
std::vector<std::string> parse_table_list(const std::string& list);

// Parses a size as pgcopydb's --split-tables-larger-than takes it: a whole number of bytes,
// optionally followed (spaces allowed) by B, kB, MB, GB or TB, powers of 1024, any case
// ("64MB", "512 kB", "1gb", "1048576"). Throws Error(kConfiguration) naming `what`.
uint64_t parse_byte_size(const std::string& text, const std::string& what = "size");

// Runs a sync on the caller's thread. While run() writes the store,
// Replica::open(options.store) reads it from any other thread (or process), for either
// store (replica.h).
//
// Thread-safety: stop() may be called from any thread at any time, also while run() runs.
// It is not undone: a run() of a Sync already stopped returns as after a stop() at its
// start. run() is called from one thread at a time; Syncs of different stores may run at
// once, each on a thread of its own. The callbacks of SyncOptions run on run()'s thread,
// except `log`, which the copy's worker threads call too (log.h).
class Sync {
 public:
  explicit Sync(SyncOptions options);
  ~Sync();
  Sync(const Sync&) = delete;
  Sync& operator=(const Sync&) = delete;

  // First run: creates the slot (and a publication if needed), copies the tables under
  // the slot's exported snapshot, then streams. The source may be a hot standby
  // (PostgreSQL 16+) whose primary publishes what is replicated: a publication that
  // would have to be created or changed there is refused (Error kConfiguration) with the
  // statement to run on the primary; creating a slot there waits for the primary (see
  // SyncOptions::primary), and stop() ends that wait (run() then returns false, nothing
  // left behind). Later runs resume from the store's
  // applied LSN. One-shot (follow = false): returns once everything the server had
  // written when the sync started is stored. Follow: returns after stop().
  // Throws pgseed::Error; the store is then left at its last durable commit, and a
  // first run that failed leaves no slot and no publication behind.
  // Returns false when stop() came before the initial copy was complete: like a failed
  // first run, nothing is kept (the next run starts the copy again). Returns true
  // otherwise (also after stop() while streaming: the store is at a durable commit).
  // Warnings (tables without a replica identity in the publication, inactive pgseed
  // slots retaining WAL on the source) go to `log`.
  bool run();

  // Asks run() to finish the transaction in hand, confirm it, and return.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgseed
