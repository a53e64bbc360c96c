// Store: the one interface the copy and apply paths write through. SQLite and RocksDB
// implement it; nothing above this file knows which one is behind it. Every store passes
// the conformance suite (tests/unit/test_store_conformance.cpp), which checks what this
// file promises; a new store is added to tests/store_kinds.h and must pass it too.
//
// The contract, in short:
// - Thread safety: a Store object is used by one thread at a time (it is not safe to call
//   from two threads at once). One Store object writes a store at a time (claim_writer).
// - Atomicity and durability: writes are made inside begin() ... commit(); nothing is
//   visible to other readers or durable before commit(), and commit() returns only when
//   all of it is durable. rollback(), a failed commit, or closing the store inside a
//   transaction leaves the store as its last commit left it. Use StoreTxn (store_txn.h),
//   which rolls back unless committed, rather than begin()/rollback() by hand.
// - Progress: the state's applied_lsn is written in the same transaction as the data it
//   covers, so the two never disagree after a crash; the store does not compare LSNs
//   itself (the apply path skips what is at or below applied_lsn).
// - Writes outside a transaction throw Error(kInternal); a table unknown to the store
//   (def.id) throws Error(kInternal) or Error(kStore); an unreadable or corrupt store throws
//   Error(kStore). A store that threw inside a transaction must be rolled back.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "pgseed/log.h"
#include "pgseed/lsn.h"
#include "model/row.h"
#include "model/table_def.h"

namespace pgseed {

// What the store knows about where its data came from and how far it got.
struct StoreState {
  enum class Phase { kEmpty, kCopying, kStreaming };
  Phase phase = Phase::kEmpty;
  std::string system_id;        // IDENTIFY_SYSTEM's systemid of the source cluster
  std::string database;         // source database name
  std::string slot;
  std::string publication;
  bool created_publication = false;  // pgseed created it, so `drop` removes it
  Lsn consistent_point;         // where the slot's exported snapshot stands
  Lsn applied_lsn;              // commit LSN of the last source transaction stored
  std::string last_commit_time; // of that transaction, ISO 8601 UTC; empty if none
  // The source's timeline when applied_lsn was stored (0: not known, a store written by a
  // pgseed before it): a follower that finds the source on another timeline checks that
  // applied_lsn is on that timeline's history too (sync/timeline_guard.h).
  uint32_t timeline = 0;
};

const char* phase_name(StoreState::Phase p);

// The read side of a store, and what a reader that is not the store's writer opens: it
// never takes the writer's lock, so a sync (in this process or another) may write the
// store meanwhile.
//
// Views: a reader reads one committed state of the store (state, tables and rows agree:
// never rows newer than the applied LSN the state reports) until refresh() moves it to the
// writer's last commit. A SQLite reader's view is a read transaction that refresh() starts
// and release() ends (without one, each read sees the last commit); a RocksDB reader's view
// is its secondary instance as last caught up (rocksdb_reader.h).
//
// Thread-safety: a StoreReader is used by one thread at a time, unless its documentation
// says more.
class StoreReader {
 public:
  virtual ~StoreReader() = default;

  // Opens the store named by `uri` for reading ("sqlite:PATH", "rocksdb:PATH" or PATH), at
  // the writer's last commit. Throws Error(kStore) when it is missing, is not a pgseed store
  // or is corrupt, Error(kConfiguration) for an unknown scheme.
  static std::unique_ptr<StoreReader> open(const std::string& uri);

  // The state and the tables, in creation order.
  virtual StoreState state() const = 0;
  virtual std::vector<TableDef> tables() const = 0;
  // Changes whenever tables() may have changed since the last call that returned the same
  // number (a cache of tables() refreshes only then).
  virtual uint64_t tables_version() const = 0;

  // Calls `fn` for every row, in key order (a table without a key: in no particular
  // order); values are PostgreSQL's text form.
  virtual void scan(const TableDef& def, const std::function<void(const Row&)>& fn) const = 0;
  virtual uint64_t count(const TableDef& def) const = 0;
  // The row whose key columns equal `key` (one value per key column, in key order).
  // Returns false when there is none. The default scans; stores override it with an
  // indexed lookup.
  virtual bool lookup(const TableDef& def, std::span<const std::string> key,
                      const std::function<void(const Row&)>& fn) const;

  // Moves the view to the writer's last commit. Throws Error(kStore) when the store cannot
  // be read; the view is then unchanged.
  virtual void refresh() {}
  // Ends the view (a SQLite read transaction, which would keep the writer's WAL from being
  // checkpointed); reads then see the last commit, each on its own. Must not throw.
  virtual void release() noexcept {}
};

class Store : public StoreReader {
 public:

  // Opens (creating if missing) the store named by `uri`: "sqlite:PATH", "rocksdb:PATH"
  // or a bare PATH (SQLite). With `must_exist`, a missing store is an error.
  // Throws Error(kConfiguration) for an unknown scheme, Error(kStore) when the store
  // cannot be opened, is not a pgseed store, or is corrupt.
  static std::unique_ptr<Store> open(const std::string& uri, bool must_exist = false);
  // Deletes the store named by `uri` and every file beside it that belongs to it (a
  // SQLite store's -wal, -shm and unfinished initial copy). The store must not be open.
  static void remove(const std::string& uri);

  // Takes the one-writer lock now (begin() takes it too): a second writer of the same
  // store is refused with Error(kStore) before it does anything. A store in an older
  // format this pgseed still reads is then brought to the current one, in one transaction,
  // with one line to `log` (a failure leaves it as it was and throws Error(kStore)).
  virtual void claim_writer(const LogSink& log = {}) { (void)log; }

  // True when a long write transaction costs no memory (the store spills it to its own
  // file as it goes), so that catching up may commit rarely; false when the transaction
  // is held in memory until commit and should stay short.
  virtual bool prefers_long_transactions() const { return false; }
  // Inside a transaction: true when committing now, between the caller's own units of
  // work, is cheaper than writing more into it (RocksDB: its writes in memory approach
  // the size at which it spills them, and a spilled transaction is written twice).
  virtual bool wants_commit() const { return false; }

  // The state and the tables as last committed (inside a transaction: as it left them).
  StoreState state() const override = 0;
  std::vector<TableDef> tables() const override = 0;
  uint64_t tables_version() const override { return ++tables_calls_; }

  // Write transactions. Nothing is visible or durable before commit(); commit() returns
  // only once everything written is durable (so its LSN may be confirmed to the server).
  // A store destroyed inside a transaction rolls it back.
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() = 0;

  // --- inside a transaction ---
  virtual void write_state(const StoreState& state) = 0;
  // Removes every table and resets the state to kEmpty.
  virtual void reset() = 0;
  // Creates the table (replacing one of the same schema and name); assigns def.id, unique
  // among the store's tables.
  virtual void create_table(TableDef& def) = 0;
  virtual void drop_table(const TableDef& def) = 0;
  // Changes the columns of an existing table (same id): added columns are NULL in
  // existing rows unless `fill` (one entry per column of `to`, null for the
  // others) gives a value for them; dropped columns disappear.
  virtual void alter_table(const TableDef& from, const TableDef& to,
                           std::span<const Datum> fill) = 0;

  // Records the table's sync state as `def` holds it (TableDef::snapshot_lsn and
  // relfilenode; the table is found by def.id) and nothing else.
  virtual void set_sync_state(const TableDef& def) = 0;

  // Bulk insert during the initial copy (rows hold every column, in def order; their keys
  // are distinct and not yet in the table, as a copy of a table with that key gives them).
  virtual void insert_batch(const TableDef& def, const RowBatch& rows) = 0;
  // The copy's per-row encoding, done off the store's thread (by the copy's workers):
  // row_encoder(def), called on the store's thread once def's table is in the store,
  // returns a function that any thread may call while the store is in use; it encodes a
  // batch of def's rows, and insert_encoded() stores them from that encoding as
  // insert_batch() would from the rows. Empty (the default): insert_batch() has no such
  // work to hand over.
  struct EncodedRows {
    virtual ~EncodedRows() = default;
  };
  using RowEncoder = std::function<std::unique_ptr<EncodedRows>(const RowBatch&)>;
  virtual RowEncoder row_encoder(const TableDef& def) {
    (void)def;
    return {};
  }
  // `encoded`: row_encoder(def)'s encoding of `rows`. The default stores `rows`.
  virtual void insert_encoded(const TableDef& def, const RowBatch& rows,
                              std::unique_ptr<EncodedRows> encoded) {
    (void)encoded;
    insert_batch(def, rows);
  }
  // Insert or replace by key (tables without a key: plain insert).
  virtual void upsert(const TableDef& def, std::span<const Datum> row) = 0;
  // `old_row`: the old key (key columns set, others null) or the whole old row (tables
  // without a key), or empty when the key did not change. `new_row` may hold
  // kUnchanged values, which keep the stored ones. When the store has no such row (it
  // moved into a row filter), the new row is inserted; its kUnchanged values are then
  // taken from the old row where that is the whole row, and otherwise cannot be known:
  // Error(kStore) (the replica has diverged).
  virtual void update(const TableDef& def, std::span<const Datum> old_row,
                      std::span<const Datum> new_row) = 0;
  // Deletes the row with this key (or, without a key, one row equal to it).
  virtual void remove(const TableDef& def, std::span<const Datum> old_row) = 0;
  virtual void truncate(const TableDef& def) = 0;

  // --- the initial copy as one bulk load, resumable table by table ---
  // sync calls begin_bulk_load() once the state naming the slot and its consistent point
  // (phase kCopying) is durable; then creates the tables to copy (awaiting their copy:
  // TableDef::kAwaitingCopy) and inserts the copied rows (in transactions, as usual); when
  // a table's rows are all inserted, records its copy point (set_sync_state). A commit()
  // makes the tables whose copy point it records durable with all their rows; the rows of
  // tables still awaiting their copy need not be. finish_bulk_load(final_state) makes
  // everything durable together with `final_state` (phase kStreaming) before returning.
  // Until then a crash, or abort_bulk_load() (outside a transaction; must not throw),
  // leaves phase kCopying, and a store may use unjournaled, unsynced or out-of-place writes
  // for the rest. The next begin_bulk_load() on that store (same state) resumes: it keeps
  // the tables whose copy point was committed and drops every other table and row; reset()
  // gives the interrupted copy up. The defaults use plain transactions.
  virtual void begin_bulk_load() {}
  virtual void finish_bulk_load(const StoreState& final_state) {
    begin();
    write_state(final_state);
    commit();
  }
  virtual void abort_bulk_load() noexcept {}

  // Reading (scan, count, lookup: StoreReader) works outside and inside a transaction.

 private:
  mutable uint64_t tables_calls_ = 0;  // tables_version()'s default: always "changed"
};

// Splits "sqlite:PATH" / "rocksdb:PATH" / "PATH" into scheme and path.
struct StoreUri {
  std::string scheme;  // "sqlite" or "rocksdb"
  std::string path;
  static StoreUri parse(const std::string& uri);
};

}  // namespace pgseed
