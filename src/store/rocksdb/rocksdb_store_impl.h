// RocksDbStore: the RocksDB store. Its parts: rocksdb_store.cpp (opening, transactions,
// tables, schema changes), rocksdb/rocksdb_rows.cpp (row writes and reads),
// rocksdb/rocksdb_overlay_txn.cpp (writing a transaction: WAL or not, spilling large ones
// to the overlay, the commit record and the merge), rocksdb/rocksdb_bulk_load.cpp (the
// initial copy as SST files ingested), rocksdb/rocksdb_layout.* (the on-disk layout: keys, the metadata
// codec, row decoding; shared with the reader, rocksdb_reader.cpp).
// A RocksDbStore is used by one thread at a time.
//
// How it works, and why a crash leaves all of a transaction or none of it:
//
// Durability, and why a kill -9 during the initial copy is always recognised.
//
// Every store transaction is one rocksdb::WriteBatch, applied atomically by commit(). The
// metadata it changes (state with its applied LSN, table definitions, id counters) goes in
// the same batch as the rows, so no reader and no recovery ever sees rows without the state
// that covers them, or the reverse.
//
// Outside the copy, the batch is written with sync=true: commit() returns after the WAL is
// on disk, and the LSN it recorded may be confirmed to the server.
//
// During the copy (the state as last committed is kCopying, and this transaction keeps it
// so), the batch is written with disableWAL: rows reach only the memtable, and become
// durable when RocksDB flushes it to an SST file. A crash loses some suffix of those
// batches. That is harmless because of two facts:
//   1. The state that says kCopying was committed durably (through the WAL) before any
//      row of the copy was written: the transaction that entered kCopying left kEmpty, so
//      it was not a copy batch.
//   2. Before any batch that goes through the WAL — above all the one that moves the phase
//      to kStreaming — commit() calls Flush(wait=true) if copy batches were written since
//      the last flush. So every copy batch is in an SST file before a later WAL record can
//      exist, and what survives a crash is always a prefix of the commit sequence
//      (memtables flush in order, and a batch never spans two memtables).
// Hence after a crash either the durable phase is still kCopying (and the partial copy is
// recognised as incomplete, then discarded with reset()), or the phase-changing commit
// reached the WAL after the flush, and every row of the copy is durable with it.
// The price is that commit() during kCopying does not promise durability; nothing is
// confirmed to the server during the copy, so nothing relies on it.
//
// Large transactions: bounded memory, same atomicity.
//
// Outside the copy, a transaction's writes wait in memory (the WriteBatch, plus the Overlay
// map for reads inside the transaction, built at the transaction's first read) until
// commit(). When they outgrow spill_bytes (8 MB), they are spilled: written to the
// overlay range  FF FF FF FF 00 + row key  as 'P' + value or 'D', with the WAL but without
// sync, and dropped from memory (the batch is no longer kept: from then on the transaction
// is the overlay on disk + the map in memory + the list of ranges it deleted). Range deletes (truncate, drop, reset, a rewrite) stay in
// memory as a short list; one that comes after a spill also deletes the overlay's entries
// in its range at once, so every overlay entry is newer than every range delete covering
// it. A read inside the transaction takes the first answer of: the map, the overlay, (not
// under a deleted range) the rows. commit() of a spilled transaction writes ONE synced
// batch, the commit record: the range deletes applied to the rows, the metadata (state
// with its applied LSN, table definitions, counters), the writes still in memory (into the
// overlay: they are newer than the overlay's), and merge_pending. Then it merges: copies
// the overlay into the rows in chunks (WAL, no sync) and ends with one synced batch that
// deletes the overlay range and merge_pending. open() first finishes a pending merge, or
// else deletes whatever the overlay range holds.
//
// Why a crash at any moment leaves all of the transaction or none of it:
//   - The overlay range is read only by the transaction that wrote it and by a merge, and
//     a merge runs only after merge_pending was committed. Before the commit record,
//     nothing outside the overlay range has changed (metadata and state are written only
//     by the commit record), so a crash leaves the old state exactly; open() sees no
//     merge_pending and deletes the leftovers (also a rollback's, should its delete be
//     lost). begin() starts only on an empty overlay range: open() and rollback() clear
//     it, and a failed clear is retried by the next begin().
//   - The commit record is atomic (one WriteBatch) and synced; syncing the WAL syncs every
//     earlier WAL record too (RocksDB syncs all live WAL files; the ones it dropped were
//     flushed to SST files first), so once it is durable every spilled entry is durable.
//     From then on the transaction is committed: state and metadata are the new ones, the
//     rows covered by its range deletes are gone, and the overlay holds the final value
//     of every other key it wrote.
//   - The merge is idempotent: it copies final values (put or delete) of keys, and no
//     other write happens between the commit record and the end of the merge (commit()
//     returns only after it; open() runs it before anything reads). A crash during it
//     leaves merge_pending set and the overlay intact (it is deleted only by the last,
//     synced, batch together with merge_pending), so open() copies the overlay again and
//     gets the same rows. Nothing reads the rows before the merge is complete.
//   - A spill write (WAL) is never preceded by unflushed copy batches: spill() flushes
//     them first, as commit() does, so the copy argument above still holds.
// A merge that fails inside commit() (I/O error) leaves the transaction committed but the
// rows unmerged: the store refuses further transactions, and the next open() merges.
//
// alter_table rewrites a table under new keys: it reads the table in chunks (2 MB) and,
// for a big table, parks the rewritten rows in the scratch range  FF FF FF FF 01,
// then deletes the table's range and writes them back through put() (which spills).
// Scratch content is only ever read by the rewrite that wrote it (it clears the scratch
// range first), and open() deletes it with the rest of the overlay range.
//
// The initial copy as a bulk load (begin/finish/abort_bulk_load, store.h).
//
// Between begin_bulk_load() and finish_bulk_load(), insert_batch() does not write rows to
// the database at all: it appends them to SST files (rocksdb::SstFileWriter) in the
// scratch directory <store>/pgseed-bulk, and finish_bulk_load() ingests those files
// (IngestExternalFile, hard-linked into the store), then commits the final state. No WAL,
// no memtable, no flush and, when the files do not overlap, no compaction: each row is
// encoded and written once.
//   - An SST file needs strictly increasing keys. A table keeps up to kBulkRunsPerTable
//     runs, each writing its files one after another: a row goes to the run whose last
//     written key is the greatest one below it, else to a new run (replacing one idle for
//     kBulkIdleRows rows when there are enough), else (rows far out of order, e.g. a
//     keyless table, whose keys start with the column values) to a sort buffer of
//     kBulkSortBytes that is written, sorted, as one more file when full. A table's first
//     kBulkSmallTableBytes (at most 1/64 of kBulkFileBytes) go to the sort buffer too, so
//     that small tables share files: ingestion syncs every file it takes in, and a
//     publication of 500 small tables cost 500 fsyncs with a file each. A run's rows
//     wait in a min-heap of kBulkRunBytes (all runs: at most kBulkBufferedBytes) before
//     they are written smallest first, which absorbs local disorder (the rows of one
//     insert stream spread over heap pages filled out of order). Interleaved streams (two
//     sessions' inserts, a synchronized scan starting mid-table, parallel workers) thus
//     settle into one run each. When a row lands inside the key range of the next run's
//     open file (that run jumped over this one's keys), that file is closed, so that the
//     file spanning the jump stays small. Files are closed at kBulkFileBytes. On the
//     benchmark's events table (rows of ~14 streams, interleaved row by row and page by
//     page) this puts ~90% of the bytes in the bottom level and leaves ~2 MB in L0.
//     LZ4 (as the store's own files): no compression would save ~20% of the copy's CPU
//     but nearly double the store's size for good (bottom-level files are not rewritten).
//   - Ingestion goes in rounds: each round ingests, in one call, a set of mutually
//     disjoint files of greatest total size (weighted interval scheduling); RocksDB puts
//     each at the lowest level it does not overlap, so disjoint files go to the bottom
//     level with sequence number 0 and are never compacted again. Later rounds overlap
//     earlier ones and land in the levels above (or in L0), with a global sequence number.
//   - begin_bulk_load() compacts the table key range first: the reset() that preceded it
//     left a range tombstone over every table, which ingested files would overlap; the
//     compaction (cheap on an empty store) drops it. Auto compactions are off during the
//     bulk load (nothing should run while files go in) and back on after it.
//   - Durability: rows in the files are reachable only once ingested, and then only by
//     key ranges of tables whose definitions say what they are. A commit that records
//     tables' copy points (set_sync_state, when the copy has stored all their rows)
//     first finishes and ingests their files (IngestExternalFile links each file into
//     the store and syncs it before it records the call, atomically, in the MANIFEST;
//     every other finished file goes in with them), then writes the transaction through
//     the WAL, synced: from then on those tables survive a crash with their rows. Other
//     copy batches (definitions of tables still being copied) go without the WAL; a
//     state written in the copy phase (the slot's consistent point) goes through it.
//     finish_bulk_load(): finish and ingest the rest, flush the memtable, then commit
//     final_state with sync=true. The scratch directory is removed at open, at begin,
//     after ingestion and on abort.
//   - Resuming: begin_bulk_load() on a store whose interrupted copy (phase kCopying)
//     committed some tables' copy points keeps those tables and empties every other
//     table id's range (rows of unfinished tables may have been ingested beside finished
//     ones, their definitions lost with the memtable); the copy goes on with new ids.
//   - During the bulk load only create_table, insert_batch, set_sync_state and
//     write_state (phase kCopying) may write; rows appended to the files are visible to
//     reads only once ingested. A rollback inside the bulk load cannot take its rows back out of
//     the files, so it makes finish_bulk_load() fail (the caller aborts, as it does after
//     any failure of the copy).
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/row.h"
#include "model/table_def.h"
#include "store/rocksdb/rocksdb_layout.h"
#include "store/rocksdb/rocksdb_overlay.h"
#include "store/rocksdb/rocksdb_support.h"
#include "store/store.h"

namespace pgseed::rocks {

// A batch of copied rows in one table's layout (Store::row_encoder): each row's key (a
// keyless table's without the row sequence number, which only the store's thread can
// give) then its value, one after another in `bytes`. One buffer, not a string per key and
// value: memory allocated on one thread and freed on another is slow with glibc's malloc.
struct EncodedBatch : Store::EncodedRows {
  TablePtr table;
  std::string bytes;
  std::vector<std::pair<uint32_t, uint32_t>> sizes;  // per row: key, value
};

class RocksDbStore final : public Store {
 public:
  RocksDbStore(std::string path, std::unique_ptr<rocksdb::DB> db);
  ~RocksDbStore() override;
  StoreState state() const override;
  std::vector<TableDef> tables() const override;
  void begin() override;
  void commit() override;
  void rollback() override;
  void write_state(const StoreState& state) override;
  void reset() override;
  void create_table(TableDef& def) override;
  void drop_table(const TableDef& def) override;
  void set_sync_state(const TableDef& def) override;
  void alter_table(const TableDef& from, const TableDef& to, std::span<const Datum> fill) override;
  bool wants_commit() const override;
  void insert_batch(const TableDef& def, const RowBatch& rows) override;
  RowEncoder row_encoder(const TableDef& def) override;
  void insert_encoded(const TableDef& def, const RowBatch& rows,
                      std::unique_ptr<EncodedRows> encoded) override;
  void upsert(const TableDef& def, std::span<const Datum> row) override;
  void update(const TableDef& def, std::span<const Datum> old_row,
              std::span<const Datum> new_row) override;
  void remove(const TableDef& def, std::span<const Datum> old_row) override;
  void truncate(const TableDef& def) override;
  void scan(const TableDef& def, const std::function<void(const Row&)>& fn) const override;
  bool lookup(const TableDef& def, std::span<const std::string> key,
              const std::function<void(const Row&)>& fn) const override;
  uint64_t count(const TableDef& def) const override;

  // ---- the initial copy as a bulk load (see "The initial copy as a bulk load") ----
  void begin_bulk_load() override;
  void finish_bulk_load(const StoreState& final_state) override;
  void abort_bulk_load() noexcept override;

 private:
  std::string where() const { return "rocksdb store '" + path_ + "'"; }

  // ---- bulk load: runs of SST files, the sort buffer, ingestion ----

  // A row waiting in a run's heap; `head` holds key bytes 4..19 (after the table id, which
  // all keys of a run share), big-endian, zero-padded: most comparisons stop there.
  struct BulkRow {
    unsigned __int128 head;
    std::string key, value;
    BulkRow(std::string k, std::string v) : head(key_head(k)), key(std::move(k)), value(std::move(v)) {}
  };
  static unsigned __int128 key_head(std::string_view k) {
    unsigned char b[16] = {};
    if (k.size() > 4) std::memcpy(b, k.data() + 4, std::min<size_t>(16, k.size() - 4));
    unsigned __int128 h = 0;
    for (unsigned char c : b) h = (h << 8) | c;
    return h;
  }
  // A run: rows written in increasing key order to its SST file (one after another),
  // through a small min-heap that absorbs local disorder (rows of one stream filled into
  // heap pages out of order): a row waits there until the heap holds kBulkRunBytes, then
  // the smallest is written. Every waiting row is above `last`, the last key written.
  // Rows that arrive in order (each at or above the one before: a table read in key
  // order) wait in `ascending` instead, a queue in key order, so that they cost no heap
  // operations; the smallest waiting row is the smaller of the two fronts.
  struct BulkRun {
    std::unique_ptr<rocksdb::SstFileWriter> writer;  // null: no file open
    std::string first;      // of the open file
    std::string last;       // last key written ("" before the first)
    std::vector<BulkRow> heap;
    std::deque<BulkRow> ascending;
    size_t heap_bytes = 0;  // of the rows waiting in heap and ascending
    uint64_t used = 0;      // for draining the least recently used run
  };
  struct BulkTable {
    std::vector<std::unique_ptr<BulkRun>> runs;
    uint64_t sorted_bytes = 0;  // of its first rows, sent to the sort buffer
  };
  struct BulkFile {
    std::string path, smallest, largest;
    uint64_t bytes = 0;
  };
  struct SortEntry {
    size_t offset;
    uint32_t key_size, value_size;
  };
  std::string bulk_dir() const;
  void bulk_cleanup() noexcept;
  void require_no_bulk(const char* op) const;
  void bulk_insert(const TableEntry& t, const EncodedBatch& rows);

  // The heap's order: a > b by key (memcmp order, a shorter key first on a common prefix).
  static bool heap_after(const BulkRow& a, const BulkRow& b);
  void bulk_add(BulkTable& bt, std::string key, std::string value);

  // Writes the run's smallest waiting row.
  void write_smallest(BulkRun& run);
  void drain(BulkRun& run);

  // After `run`'s last key grew: moves it forward to keep bt.runs sorted by last key.
  static void restore_order(BulkTable& bt, BulkRun* run);
  void open_file(BulkRun& run, const std::string& first_key);
  void close_file(BulkRun& run);

  // Rows that fit no run: kept in one buffer, written sorted as a file when it is full.
  void sort_add(std::string_view key, std::string_view value);
  void write_sorted();

  // An interrupted copy taken up (see "Resuming" above): the tables whose copy point was
  // committed stay; every other table id's range is emptied (a table still being copied
  // may have had files ingested with a finished one, and its definition, written
  // without the WAL, may be lost) and the definitions of unfinished tables go. Returns
  // whether any table was kept.
  bool keep_finished_tables();

  // The files of the tables in bulk_finished_ are finished (their runs drained and
  // closed; the sort buffer, which may hold their rows, written) and ingested; commit()
  // then writes the transaction through the WAL, synced. Other tables' files wait for a
  // later round (fewer rounds: more of them reach the bottom level).
  void ingest_finished_tables();

  // Ingests bulk_files_ in rounds of disjoint files, the heaviest set first (weighted
  // interval scheduling): those go to the bottom level, the rest above them.
  void ingest_files();
  [[noreturn]] void fail(const rocksdb::Status& s, const std::string& what) const;
  void require_txn(const char* op) const;
  void end_txn();
  const Meta& current() const;

  // The state as committed and as this transaction leaves it are both kCopying: its rows go
  // to the database in copy batches (see the durability argument at the top).
  size_t chunk_bytes() const;
  bool copy_txn() const;
  const TableEntry& entry(const TableDef& def) const;
  const TablePtr& entry_ptr(const TableDef& def) const;
  static std::string table_begin(uint32_t id);
  static std::string table_end(uint32_t id);
  static void check_row(const TableEntry& t, std::span<const Datum> row, const char* op);
  static bool has_unchanged(std::span<const Datum> row);
  static void merge_unchanged(Row& merged, std::span<const Datum> from);

  // Key of a new row: by key, or (no key) all columns plus a fresh sequence number.
  std::string row_key(const TableEntry& t, std::span<const Datum> row);
  static std::string encode_row(const TableEntry& t, std::span<const Datum> row);
  static void append_row(std::string& out, const TableEntry& t, std::span<const Datum> row);
  // Rows of table `t` as keys and values (row_encoder's work: any thread); the keys of a
  // keyless table still lack their sequence number, which append_row_seq() gives them.
  static std::unique_ptr<EncodedBatch> encode_batch(TablePtr t, const RowBatch& rows);
  void append_row_seq(const TableEntry& t, std::string& key);

  // Same key columns (names, order, encodings) on both sides, and both keyed: rows keep
  // their keys.
  static bool same_key(const TableEntry& old, const TableDef& to);

  // The key of one stored row equal to `row` in a keyless table, if any.
  std::optional<std::string> find_equal(const TableEntry& t, std::span<const Datum> row) const;
  void set_table(TableEntry t);
  void drop(uint32_t id);
  void write_meta_changes(rocksdb::WriteBatch& batch);

  // With `end_on_failure`, a failure rolls the transaction back (commit()); otherwise it
  // stays open for the caller to roll back.
  void flush_copy(bool end_on_failure = true);

  // A write through the WAL, synced or not. Throws Error(kStore).
  void write_wal(rocksdb::WriteBatch& b, const char* what, bool sync = false) const;

  // ---- writes: into the batch, and into the overlay for reads inside the transaction ----
  // Once the transaction has spilled, the batch is no longer kept: the overlay map (plus
  // the spilled overlay on disk and the list of deleted ranges) is the transaction.
  void put(std::string_view k, std::string_view v, bool index = true);
  void del(std::string_view k);
  void del_range(std::string_view b, std::string_view e);
  size_t bytes_in_memory() const;  // the transaction's, until it spills
  void maybe_spill();

  // Moves the writes held in memory to the overlay range (WAL, no sync: durable with the
  // synced commit record, and discarded after a crash before it). On failure the
  // transaction stays open, for the caller to roll back.
  void spill();

  // commit() of a spilled transaction: the commit record, then the merge.
  void commit_spilled();

  // Copies the overlay into the rows, then deletes it and merge_pending in one synced
  // write. Idempotent: a crash anywhere in it is repaired by running it again.
  void merge_overlay();

  // Deletes everything in the overlay range (an uncommitted transaction's spill, a
  // rewrite's scratch). Throws Error(kStore); overlay_dirty_ says whether it is still to do.
  void clear_overlay();
  void try_clear_overlay() noexcept;
  void sync_overlay() const;

  // ---- reads: the DB, under the transaction's own writes when inside one ----
  // A value of the overlay range: the write it records (nullopt: a delete).
  std::optional<std::string_view> overlay_entry(std::string_view v) const;

  // Inside a transaction: its writes in memory, then its spilled writes, then (unless it
  // deleted the key's range) the database.
  std::optional<std::string> get(std::string_view key) const;

  // Calls fn(key, value) for every key in [begin, end) in order until it returns false.
  // fn must not write to the store. Inside a transaction it merges three ordered sources,
  // the first one holding a key winning: the writes in memory, the spilled writes, the
  // database (less the ranges the transaction deleted).
  void for_each(std::string_view begin, std::string_view end,
                const std::function<bool(std::string_view, std::string_view)>& fn) const;
  // for_each's iterator over the database, bounded by `end`. Inside a transaction it is
  // kept for the next call while the database has not changed (its latest sequence
  // number) and the transaction goes on: a keyless table's update or delete looks its row
  // up once per change, and making an iterator cost half as much as the seek. A nested
  // call (fn reading the store) gets its own.
  struct BoundedIterator {
    std::string upper_key;
    rocksdb::Slice upper;  // ReadOptions::iterate_upper_bound points here
    std::unique_ptr<rocksdb::Iterator> it;
    void bound(std::string_view end);  // sets upper_key and upper
  };
  class DbIterator {
   public:
    DbIterator(const RocksDbStore& store, std::string_view end);
    ~DbIterator();
    DbIterator(const DbIterator&) = delete;
    DbIterator& operator=(const DbIterator&) = delete;
    rocksdb::Iterator* operator->() const { return it_; }

   private:
    const RocksDbStore& store_;
    std::unique_ptr<BoundedIterator> own_;  // not kept
    rocksdb::Iterator* it_ = nullptr;
  };
  static void open_bounded(rocksdb::DB& db, BoundedIterator& b, std::string_view end);

  // ---- opening ----
  void load();

  std::string path_;
  std::unique_ptr<rocksdb::DB> db_;
  Meta committed_;

  bool in_txn_ = false;
  Meta pending_;
  bool state_dirty_ = false;
  std::set<uint32_t> dirty_tables_;  // definitions to write (or delete) at commit
  rocksdb::WriteBatch batch_;
  mutable Overlay overlay_;
  mutable BoundedIterator read_it_;                // DbIterator's, kept in a transaction
  mutable rocksdb::SequenceNumber read_it_seq_ = 0;  // the database's when it was made
  mutable bool read_it_busy_ = false;                // a for_each uses it
  mutable bool overlay_stale_ = false;  // batch_ holds writes overlay_ does not
  bool spilled_ = false;                // this transaction has writes in the overlay range
  bool batch_has_range_ = false;        // batch_ holds a range delete
  bool unflushed_copy_ = false;         // copy batches written without WAL since the last flush

  size_t spill_bytes_ = g_spill_bytes;  // memory a transaction may hold before it spills
  bool overlay_dirty_ = false;  // the overlay range may hold something: cleared by begin()
  bool broken_ = false;         // a large commit failed half-way: reopen to finish it

  // The bulk load (begin_bulk_load() to finish_bulk_load() or abort_bulk_load()).
  bool bulk_ = false;
  bool bulk_poisoned_ = false;         // a transaction was rolled back during it
  bool auto_compactions_off_ = false;  // turned off by begin_bulk_load()
  rocksdb::Options bulk_options_;      // for the SST writers
  std::unique_ptr<rocksdb::Env> bulk_env_;  // theirs (NoSyncFileSystem); outlives them
  std::map<uint32_t, BulkTable> bulk_tables_;
  std::set<uint32_t> bulk_finished_;   // tables whose copy point this transaction records
  size_t open_files_ = 0;
  size_t bulk_buffered_ = 0;           // bytes waiting in the runs' heaps
  uint64_t bulk_clock_ = 0;
  uint64_t bulk_file_seq_ = 0;
  std::vector<BulkFile> bulk_files_;   // finished, not ingested yet
  std::string sort_arena_;             // the sort buffer: keys and values
  std::vector<SortEntry> sort_entries_;
};

}  // namespace pgseed::rocks
