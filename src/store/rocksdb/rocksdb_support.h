// The RocksDB store's small shared parts: tuning constants, the test hooks
// (rocksdb_store_testing); the layout's keys and helpers come from rocksdb_layout.h.
#pragma once

#include <rocksdb/compression_type.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "store/rocksdb/rocksdb_layout.h"
#include "store/rocksdb_store.h"

namespace pgseed::rocks {

namespace fs = std::filesystem;

// The on-disk layout (rocksdb_layout.h): keys, the metadata codec, row decoding.
using namespace rocksdb_layout;

inline constexpr size_t kCopyFlushBytes = 4u << 20;   // write copied rows in ~4 MB batches
inline constexpr size_t kDefaultSpillBytes = 8u << 20;  // a transaction spills above this in memory
inline constexpr size_t kChunkBytes = 2u << 20;  // merge and rewrite work in chunks of this (at most)

// Bulk load (see "The initial copy as a bulk load" in rocksdb_store_impl.h).
inline constexpr const char* kBulkDir = "pgseed-bulk";   // scratch directory inside the store
inline constexpr size_t kBulkRunsPerTable = 16;          // runs (SST writers) per table
inline constexpr size_t kBulkOpenWriters = 32;           // open SST files in all
inline constexpr size_t kBulkRunBytes = 256u << 10;      // rows waiting in a run's heap
inline constexpr size_t kBulkBufferedBytes = 8u << 20;   // ... and in all runs
inline constexpr uint64_t kBulkIdleRows = 8192;          // a run unused for this many rows may go
inline constexpr uint64_t kBulkFileBytes = 64u << 20;    // an SST file is closed at this size
inline constexpr size_t kBulkSortBytes = 8u << 20;       // rows that fit no run: sorted in this much
inline constexpr uint64_t kBulkSmallTableBytes = 1u << 20;  // a table's first rows: sorted too
inline constexpr rocksdb::CompressionType kBulkCompression = rocksdb::kLZ4Compression;

// Test hooks (rocksdb_store_testing): settings a test makes before it opens a store, and
// counters that stores in any thread add to (atomic: several Syncs may run at once).
inline size_t g_spill_bytes = kDefaultSpillBytes;
inline std::string g_crash_point;
inline int g_crash_countdown = 0;
inline std::atomic<uint64_t> g_spill_count{0};
inline uint64_t g_bulk_file_bytes = kBulkFileBytes;
inline size_t g_bulk_sort_bytes = kBulkSortBytes;
inline size_t g_bulk_run_bytes = kBulkRunBytes;
inline std::atomic<uint64_t> g_bulk_files_ingested{0};
inline std::atomic<uint64_t> g_bulk_rows_sorted{0};

inline void crash_point(std::string_view name) {
  if (g_crash_point.empty() || g_crash_point != name) return;
  if (--g_crash_countdown == 0) _exit(rocksdb_store_testing::kCrashExitCode);
}

}  // namespace pgseed::rocks
