// pgseed::Replica — read a store: its state, its tables, rows by key or in key order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pgseed/lsn.h"

namespace pgseed {

// A value in PostgreSQL's text form (as `COPY ... TO STDOUT` prints it, under UTC,
// DateStyle ISO, extra_float_digits 3, bytea hex); nullopt is NULL.
using Value = std::optional<std::string>;
using Values = std::vector<Value>;

struct ColumnInfo {
  std::string name;
  std::string type;      // the source column's type, e.g. "numeric(12,2)"
  int key_position = 0;  // 1-based position in the key; 0 when not a key column
};

struct TableInfo {
  std::string name;    // "schema.table", quoted as PostgreSQL needs
  std::string schema;
  std::string table;
  // A SQLite store's table of it, for SQL on the file: usually `table` (schema public) or
  // `schema.table`, another name where that would collide (README, "Stores"). Empty for
  // RocksDB. The calls below take `name`, never this.
  std::string sqlite_table;
  std::vector<ColumnInfo> columns;
  bool has_key = false;  // false for REPLICA IDENTITY FULL tables without a key
};

struct ReplicaState {
  enum class Phase {
    kEmpty,      // no sync has written the store yet
    kCopying,    // the initial copy is not finished
    kStreaming,  // copied; changes are applied from applied_lsn on
  };
  Phase phase = Phase::kEmpty;
  std::string source_system_id;
  std::string source_database;
  std::string slot;
  std::string publication;
  bool created_publication = false;
  Lsn consistent_point;  // where the initial copy stands
  Lsn applied_lsn;       // everything the source committed before this is in the store
  std::string last_commit_time;  // of the last applied transaction; empty if none
  // The source's timeline when applied_lsn was stored: it changes when a standby is
  // promoted (sync --follow rides through it); 0 when not known (a store written before
  // pgseed recorded it, or nothing streamed yet).
  uint32_t timeline = 0;
};

// "empty", "copying" or "streaming", as `pgseed status` prints the phase.
const char* to_string(ReplicaState::Phase phase);

// How a Replica follows a store that a sync writes meanwhile.
struct ReplicaOptions {
  // false (the default): each call reads the store as the sync last committed it, and is
  // consistent by itself (a scan's rows are all from one commit).
  // true: every call reads the view open() took, until refresh() moves it: state(),
  // tables(), counts and the rows of every table agree with each other, at
  // state().applied_lsn (a dump, a report). A SQLite view is a read transaction: while it
  // is held, the sync cannot checkpoint its WAL past it (the -wal file grows), so hold a
  // pinned view only as long as needed. A RocksDB view keeps the table files it reads open
  // (their disk space is freed at the next refresh()).
  bool pinned = false;
};

// Read access to an existing store, also while a sync writes it: from another process
// (`pgseed sync --follow` running) or from this one (a Sync's run() on another thread).
// Reading never takes the writer's lock: a sync may start, run and stop while a Replica is
// open. A SQLite store is read through its own connection (WAL mode); a RocksDB store
// through a RocksDB secondary instance that catches up with the writer
// (TryCatchUpWithPrimary) at each call, or at refresh() when pinned. Either way a read
// never shows rows newer than the applied LSN its state reports, nor part of a source
// transaction.
//
// Thread-safety: thread-safe: any number of threads may call one Replica at once, and the
// calls are serialised (one at a time); for reads in parallel, open one Replica per thread.
// A scan()'s callback must not call the same Replica (Error kInternal).
//
// Cost: table metadata is cached and read again only when the store's tables changed
// (SQLite: after another connection committed, PRAGMA data_version; RocksDB: a version
// key the writer moves with every change of a table definition). A lookup costs one
// indexed read, plus (not pinned) a look at what the writer committed since the last call:
// a read transaction on SQLite, a catch-up of the secondary on RocksDB (~0.1 ms while a
// sync applies 1000 transactions/s). On a hot path, pin the Replica and refresh() as often
// as freshness needs (after each on_commit, every few ms): lookups then cost the read
// alone. A RocksDB Replica replays the writer's WAL not yet flushed into memory of its own
// (up to about the writer's memtables, 2 x 16 MB) and keeps its LOG in a temporary
// directory, removed when it is destroyed.
class Replica {
 public:
  // Opens "sqlite:PATH", "rocksdb:PATH" or PATH. Throws Error(kStore) when it does not
  // exist, is not a pgseed store, or is corrupt.
  static std::unique_ptr<Replica> open(const std::string& store, const ReplicaOptions& options = {});
  ~Replica();

  // Pinned: moves the view to the store's last commit (not pinned: nothing to do, each
  // call reads the last commit). Throws Error(kStore); the view is then unchanged.
  void refresh();

  ReplicaState state() const;
  std::vector<TableInfo> tables() const;

  // `table` as SQL names it ("orders", "sales.\"Order Items\""). Throws Error
  // (kConfiguration) for a table the store does not have.
  // The row with this key (one text value per key column, in key order), if any.
  std::optional<Values> lookup(const std::string& table, const std::vector<std::string>& key) const;
  // Every row, in key order (SQLite: the store's collation; RocksDB: the key order).
  void scan(const std::string& table, const std::function<void(const Values&)>& fn) const;
  uint64_t count(const std::string& table) const;

 private:
  struct Impl;
  explicit Replica(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Text helpers for tools that print rows: a CSV field exactly as PostgreSQL's
// `COPY ... (FORMAT csv)` writes it (`single_column`: the row has one column, where an
// empty string must be quoted differently), and a JSON string (or null).
void append_csv_field(std::string& out, const Value& v, bool single_column = false);
void append_json_value(std::string& out, const Value& v);

}  // namespace pgseed
