// RocksDbReader: reads a RocksDB store while a writer (a sync, in this process or another)
// holds it open, through RocksDB's secondary instance (DB::OpenAsSecondary): the writer
// keeps the directory's LOCK, and a reader needs none.
//
// View: the secondary as last caught up (TryCatchUpWithPrimary, by refresh()). Nothing in
// it moves between two refresh() calls, so every read in between sees one committed
// state: rows and the state that covers them come from the same prefix of the writer's
// WriteBatches (each batch is replayed whole), never rows newer than the applied LSN the
// state reports. A secondary does not support snapshots (RocksDB 7.8), so the view is
// held by not catching up while a read runs (reads share a lock that refresh() takes
// alone).
//
// Large transactions (rocksdb_store.cpp, "Large transactions"): a spilled transaction's
// writes sit in the overlay range until its commit record, which sets merge_pending; the
// merge then copies them into the rows in several batches. The reader ignores the overlay
// range unless merge_pending is set in its view, and while it is set reads the overlay
// before the rows (the overlay then holds the final value of every key the transaction
// wrote, and its range deletes are already applied to the rows). So a view never shows
// part of a spilled transaction, before or during its merge.
//
// During the initial copy (phase kCopying) rows appear as the writer ingests them and
// batches written without the WAL appear only once flushed: a reader sees a consistent
// state of the store, but not yet of the source (the state says so).
//
// Files: the secondary keeps its own LOG and metadata in a temporary directory (removed
// by the destructor) and keeps every table file open (max_open_files = -1), so files the
// writer compacts away stay readable until the next refresh().
//
// Thread-safety: thread-safe. Reads may run concurrently; refresh() waits for them.
#pragma once

#include <memory>
#include <string>

#include "store/store.h"

namespace pgseed {

// Opens the RocksDB store in directory `path` for reading, at the writer's last commit.
// Throws Error(kStore) with one line when the directory does not exist, holds no RocksDB
// database or not a pgseed store, has another format version, or cannot be read.
std::unique_ptr<StoreReader> open_rocksdb_reader(const std::string& path);

}  // namespace pgseed
