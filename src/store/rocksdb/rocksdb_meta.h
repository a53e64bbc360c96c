// The RocksDB store's metadata codec: the keys under table id 0 (format version, state,
// table definitions, id counters) and how the state and a table's definition are encoded
// (varints and length-prefixed strings, row_codec.h). Pure functions: no database here.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_reader.h"
#include "model/table_def.h"
#include "store/key_codec.h"
#include "store/row_codec.h"
#include "store/store.h"

namespace pgseed::rocks {

inline constexpr uint32_t kFirstTableId = 1;

// The metadata key `name` (table id 0 + name), and a table definition's key.
std::string meta_key(std::string_view name);
std::string table_meta_key(uint32_t id);

void put_str(std::string& out, std::string_view s);
std::string_view get_str(ByteReader& r, const char* what);
ByteReader reader(std::string_view s, const char* context);

std::string encode_state(const StoreState& s);
StoreState decode_state(std::string_view v);

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
TableEntry decode_table(uint32_t id, std::string_view v);

using TablePtr = std::shared_ptr<const TableEntry>;

// The store's metadata as one transaction sees it.
struct Meta {
  StoreState state;
  std::map<uint32_t, TablePtr> tables;  // by id, which is creation order
  uint32_t next_table_id = kFirstTableId;
  uint64_t next_row_seq = 1;
};

}  // namespace pgseed::rocks
