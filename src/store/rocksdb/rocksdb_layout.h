// The on-disk layout of the RocksDB store (rocksdb_store.h has the key space), its one
// metadata codec: key helpers (meta keys under table id 0, the overlay ranges), the state
// and table-definition encodings (varints and length-prefixed strings, row_codec.h), and
// the decoding of a stored row. Pure functions: no database here. Shared by the writer
// (rocksdb_store.cpp and the other files of store/rocksdb/) and the reader
// (rocksdb_reader.cpp), so that both read one format.
#pragma once

#include <rocksdb/slice.h>
#include <rocksdb/table.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_reader.h"
#include "model/row.h"
#include "model/table_def.h"
#include "store/key_codec.h"
#include "store/store.h"

namespace pgseed::rocksdb_layout {

constexpr std::string_view kFormatVersion = "1";
constexpr uint32_t kFirstTableId = 1;
constexpr uint32_t kLastTableId = 0xFFFFFFFE;  // so that table_id + 1 is still a prefix
constexpr uint32_t kOverlayTableId = 0xFFFFFFFF;  // the overlay range (never a table)
constexpr char kOverlayPut = 'P';
constexpr char kOverlayDelete = 'D';
constexpr size_t kOverlayPrefixSize = 5;  // FF FF FF FF + sub-range byte

// Meta key (under meta_key) that changes whenever a table definition is written or
// deleted: its value is a u64 BE counter. Readers compare it to know when to reload the
// definitions. Stores written before it existed lack it (readers then reload on every change).
constexpr std::string_view kTablesVersionName = "tables_version";

// The table format of every SST file the store writes (memtable flushes, compactions, the
// bulk load's files) and how the writer and the reader hold them in memory: a block cache
// of `cache_bytes` that also holds the index blocks, so that memory does not grow with the
// data. Without it each open file keeps its whole index in memory (~28 bytes per 4 KB
// block: ~37 MB for the 10M-row scale table, which made the stream's peak RSS 153 MB).
// The index is partitioned (kTwoLevelIndexSearch): a point read loads one ~4 KB
// partition into the cache, not the whole index of a 64 MB file; only the small top
// level of each file, and L0's index, stay pinned.
std::shared_ptr<rocksdb::TableFactory> table_factory(size_t cache_bytes);

std::string overlay_begin();
std::string overlay_end();
std::string scratch_begin();
std::string scratch_end();
std::string overlay_all_begin();
std::string overlay_all_end();
std::string overlay_key(std::string_view key);
std::string overlay_value(const std::optional<std::string>& v);
// The metadata key `name` (table id 0 + name), and a table definition's key.
std::string meta_key(std::string_view name);
std::string table_meta_key(uint32_t id);
// The smallest key greater than every key that starts with `prefix`.
std::string prefix_end(std::string prefix);

inline rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }
std::string one_line(std::string s);

void put_str(std::string& out, std::string_view s);
std::string_view get_str(ByteReader& r, const char* what);
ByteReader reader(std::string_view s, const char* context);

std::string encode_state(const StoreState& s);
StoreState decode_state(std::string_view v);  // throws Error(kDecode)

// A table as the store holds it: its definition, its key codec, and the layout of its
// stored rows. Cells of a stored row are "slots"; column i lives in slot[i]. ADD COLUMN
// gives the new column a new slot at the end (rows written before have fewer cells and
// read it as missing[i]); DROP COLUMN leaves its slot dead (written as NULL). A rewrite
// of the table (any other change) makes the layout the identity again.
struct TableEntry {
  TableDef def;
  KeyCodec codec;
  std::vector<uint32_t> slot;
  std::vector<std::optional<std::string>> missing;
  uint32_t slot_count = 0;
  std::vector<int> column_of_slot;  // -1: dead slot

  void finish() {
    codec = KeyCodec(def);
    column_of_slot.assign(slot_count, -1);
    for (size_t i = 0; i < slot.size(); ++i) column_of_slot[slot[i]] = static_cast<int>(i);
  }

  static TableEntry identity(TableDef def) {
    TableEntry t;
    t.def = std::move(def);
    for (uint32_t i = 0; i < t.def.columns.size(); ++i) t.slot.push_back(i);
    t.missing.assign(t.def.columns.size(), std::nullopt);
    t.slot_count = static_cast<uint32_t>(t.def.columns.size());
    t.finish();
    return t;
  }
};

std::string encode_table(const TableEntry& t);
TableEntry decode_table(uint32_t id, std::string_view v);  // throws Error(kDecode)

using TablePtr = std::shared_ptr<const TableEntry>;

// The store's metadata as one transaction sees it.
struct Meta {
  StoreState state;
  std::map<uint32_t, TablePtr> tables;  // by id, which is creation order
  uint32_t next_table_id = kFirstTableId;
  uint64_t next_row_seq = 1;
  uint64_t tables_version = 0;  // kTablesVersionName
};

// Scratch space of decode_row, reused from row to row.
struct RowBuffers {
  std::string scratch;
  Row cells;
};

// The row stored as `value` in table `t`'s layout, one Datum per column (views into `buf`
// and into `t`: valid until either changes).
void decode_row(const TableEntry& t, std::string_view value, RowBuffers& buf, Row& out);
// The stored key of the row of keyed table `t` whose key columns hold `key` (in key order;
// one value per key column): what lookups probe.
std::string key_of(const TableEntry& t, std::span<const std::string> key);

}  // namespace pgseed::rocksdb_layout
