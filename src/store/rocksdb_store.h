// RocksDbStore: the store as a RocksDB directory (DESIGN.md, "RocksDB store").
//
// Key space (one column family, every key starts with a big-endian u32 table id):
//
//   00 00 00 00 "format_version"     -> "1": marks the directory as a pgseed store
//   00 00 00 00 "state"              -> StoreState (encoding in rocksdb_store.cpp)
//   00 00 00 00 "next_table_id"      -> u32 BE: table ids are never reused
//   00 00 00 00 "next_row_seq"       -> u64 BE: next sequence suffix for rows of keyless tables
//   00 00 00 00 "table:" + u32 BE id -> the TableDef and its physical row layout
//   u32 BE id (>= 1) + key           -> one row (key: key_codec.h, value: row_codec.h)
//
// A table with a key stores a row under  id + KeyCodec(key columns).
// A table without one (REPLICA IDENTITY FULL) stores it under  id + KeyCodec(all columns) +
// u64 BE sequence, so equal rows are kept apart and remove() deletes exactly one of them.
// The value always holds the whole row (all columns), so a row reads back exactly as it
// came in, whatever normalisation its key needed.
//
// Transactions: one rocksdb::WriteBatch per store transaction, state included, written with
// sync=true by commit(). During the initial copy the batches skip the WAL (see the
// durability argument in rocksdb_store.cpp).
//
// A RocksDbStore is used by one thread at a time.
#pragma once

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

}  // namespace pgseed
