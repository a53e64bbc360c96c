// RocksDbStore: the store as a RocksDB directory (DESIGN.md, "RocksDB store").
//
// Key space (one column family, every key starts with a big-endian u32 table id):
//
//   00 00 00 00 "format_version"     -> "1": marks the directory as a pgseed store
//   00 00 00 00 "state"              -> StoreState (encoding in rocksdb/rocksdb_layout.cpp)
//   00 00 00 00 "next_table_id"      -> u32 BE: table ids are never reused
//   00 00 00 00 "next_row_seq"       -> u64 BE: next sequence suffix for rows of keyless tables
//   00 00 00 00 "table:" + u32 BE id -> the TableDef and its physical row layout
//   00 00 00 00 "tables_version"     -> u64 BE: moves whenever a table definition or the
//                                       phase changes (readers reload definitions then)
//   00 00 00 00 "merge_pending"      -> "1": a committed large transaction's overlay still
//                                       has to be copied into the rows (see below)
//   u32 BE id (>= 1) + key           -> one row (key: key_codec.h, value: row_codec.h)
//   FF FF FF FF 00 + row key         -> the overlay: a large transaction's spilled writes,
//                                       'P' + row value (put) or 'D' (delete)
//   FF FF FF FF 01 + row key         -> scratch of an alter_table rewrite (row value)
//
// A table with a key stores a row under  id + KeyCodec(key columns).
// A table without one (REPLICA IDENTITY FULL) stores it under  id + KeyCodec(all columns) +
// u64 BE sequence, so equal rows are kept apart and remove() deletes exactly one of them.
// The value always holds the whole row (all columns), so a row reads back exactly as it
// came in, whatever normalisation its key needed.
//
// The initial copy is a bulk load (begin_bulk_load() .. finish_bulk_load()): rows go to
// SST files in <dir>/pgseed-bulk, ingested at the end (rocksdb/rocksdb_bulk_load.cpp).
//
// Transactions: one rocksdb::WriteBatch per store transaction, state included, written with
// sync=true by commit(). During the initial copy the batches skip the WAL (see the
// durability argument in rocksdb/rocksdb_store_impl.h). A transaction whose writes outgrow a memory
// threshold (8 MB) spills them to the overlay range and is committed by one synced write of
// its state with "merge_pending", then merged into the rows (rocksdb_store.cpp, "Large
// transactions"): memory stays bounded whatever the transaction size.
//
// A RocksDbStore is used by one thread at a time. It holds the directory's LOCK: readers
// (in this process or others) open the directory through rocksdb_reader.h instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "store/store.h"

namespace pgseed {

// Opens (creating if missing, unless `must_exist`) the RocksDB store in directory `path`.
// Throws Error(kStore) with one line when the path is a file, is missing and `must_exist`,
// is a non-empty directory that holds no RocksDB database, is a RocksDB database that is
// not a pgseed store (data but no format-version key) or has another format version, is
// corrupt, or is locked by another process (or another open store in this one).
std::unique_ptr<Store> open_rocksdb_store(const std::string& path, bool must_exist);

// Test hooks (unit tests only; process-wide, not thread-safe).
namespace rocksdb_store_testing {
// The in-memory size above which a transaction spills to the overlay (also the size of
// merge and rewrite chunks); 0 restores the default (8 MB).
void set_spill_bytes(size_t bytes);
// The process calls _exit(kCrashExitCode) the nth time it reaches the named point:
// "spill" (after a spill write), "commit_record" (after the synced write that commits a
// spilled transaction), "merge" (after a chunk of the merge, at commit or at open);
// in a bulk load: "bulk_begin" (end of begin_bulk_load), "bulk_file" (after an SST file
// is finished), "bulk_ingest" (after an ingestion call), "bulk_flushed" (after the flush
// that precedes the final state write of finish_bulk_load).
// An empty name disarms it.
inline constexpr int kCrashExitCode = 86;
void set_crash_point(const std::string& point, int nth = 1);
// Spills since the process started.
uint64_t spill_count();
// Bulk load limits: the size at which an SST file is closed, of the sort buffer for rows
// that fit no run, and of a run's heap; 0 restores the default (64 MB, 8 MB, 256 kB).
void set_bulk_bytes(uint64_t file_bytes, size_t sort_bytes, size_t run_bytes = 0);
// Bulk load files ingested, and rows that went through the sort buffer, since the process
// started.
uint64_t bulk_files_ingested();
uint64_t bulk_rows_sorted();
}  // namespace rocksdb_store_testing

}  // namespace pgseed
