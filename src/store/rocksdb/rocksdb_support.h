// The RocksDB store's small shared parts: tuning constants, the test hooks
// (rocksdb_store_testing), key ranges of the overlay, and Slice/string helpers.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/iterator.h>
#include <rocksdb/cache.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "pgseed/error.h"
#include "common/bytes.h"
#include "store/key_codec.h"
#include "store/row_codec.h"

#include "store/rocksdb/rocksdb_meta.h"
#include "store/rocksdb_store.h"

namespace pgseed::rocks {

namespace fs = std::filesystem;

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
inline constexpr rocksdb::CompressionType kBulkCompression = rocksdb::kLZ4Compression;

// Test hooks (rocksdb_store_testing).
inline size_t g_spill_bytes = kDefaultSpillBytes;
inline std::string g_crash_point;
inline int g_crash_countdown = 0;
inline uint64_t g_spill_count = 0;
inline uint64_t g_bulk_file_bytes = kBulkFileBytes;
inline size_t g_bulk_sort_bytes = kBulkSortBytes;
inline size_t g_bulk_run_bytes = kBulkRunBytes;
inline uint64_t g_bulk_files_ingested = 0;
inline uint64_t g_bulk_rows_sorted = 0;

inline void crash_point(std::string_view name) {
  if (g_crash_point.empty() || g_crash_point != name) return;
  if (--g_crash_countdown == 0) _exit(rocksdb_store_testing::kCrashExitCode);
}

inline constexpr std::string_view kFormatVersion = "1";
inline constexpr uint32_t kLastTableId = 0xFFFFFFFE;  // so that table_id + 1 is still a prefix
inline constexpr uint32_t kOverlayTableId = 0xFFFFFFFF;  // the overlay range (never a table)
inline constexpr char kOverlayPut = 'P';
inline constexpr char kOverlayDelete = 'D';
inline constexpr size_t kOverlayPrefixSize = 5;  // FF FF FF FF + sub-range byte

// FF FF FF FF 00: spilled writes; FF FF FF FF 01: rewrite scratch. [begin, end) of each.
inline std::string overlay_begin() { return KeyCodec::table_prefix(kOverlayTableId) + '\x00'; }
inline std::string overlay_end() { return KeyCodec::table_prefix(kOverlayTableId) + '\x01'; }
inline std::string scratch_begin() { return overlay_end(); }
inline std::string scratch_end() { return KeyCodec::table_prefix(kOverlayTableId) + '\x02'; }
// Everything pgseed ever writes under FF FF FF FF.
inline std::string overlay_all_begin() { return overlay_begin(); }
inline std::string overlay_all_end() { return scratch_end(); }

inline std::string overlay_key(std::string_view key) {
  std::string k = overlay_begin();
  k += key;
  return k;
}

inline std::string overlay_value(const std::optional<std::string>& v) {
  if (!v) return std::string(1, kOverlayDelete);
  std::string out;
  out.reserve(v->size() + 1);
  out.push_back(kOverlayPut);
  out += *v;
  return out;
}

// The smallest key greater than every key that starts with `prefix`.
inline std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<uint8_t>(prefix.back()) != 0xFF) {
      prefix.back() = static_cast<char>(static_cast<uint8_t>(prefix.back()) + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  throw Error(ErrorCategory::kInternal, "no key follows an all-0xFF prefix");
}

inline rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

inline std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

struct RowBuffers {
  std::string scratch;
  Row cells;
};

}  // namespace pgseed::rocks
