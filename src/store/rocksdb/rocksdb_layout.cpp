#include "store/rocksdb/rocksdb_layout.h"

#include <rocksdb/cache.h>

#include <algorithm>
#include <cstdint>

#include "common/bytes.h"
#include "pgseed/error.h"
#include "store/row_codec.h"

namespace pgseed::rocksdb_layout {

std::shared_ptr<rocksdb::TableFactory> table_factory(size_t cache_bytes) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(cache_bytes);
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_top_level_index_and_filter = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  return std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(table));
}

// FF FF FF FF 00: spilled writes; FF FF FF FF 01: rewrite scratch. [begin, end) of each.
std::string overlay_begin() { return KeyCodec::table_prefix(kOverlayTableId) + '\x00'; }
std::string overlay_end() { return KeyCodec::table_prefix(kOverlayTableId) + '\x01'; }
std::string scratch_begin() { return overlay_end(); }
std::string scratch_end() { return KeyCodec::table_prefix(kOverlayTableId) + '\x02'; }
// Everything pgseed ever writes under FF FF FF FF.
std::string overlay_all_begin() { return overlay_begin(); }
std::string overlay_all_end() { return scratch_end(); }

std::string overlay_key(std::string_view key) {
  std::string k = overlay_begin();
  k += key;
  return k;
}

std::string overlay_value(const std::optional<std::string>& v) {
  if (!v) return std::string(1, kOverlayDelete);
  std::string out;
  out.reserve(v->size() + 1);
  out.push_back(kOverlayPut);
  out += *v;
  return out;
}

std::string meta_key(std::string_view name) {
  std::string k = KeyCodec::table_prefix(0);
  k += name;
  return k;
}

std::string table_meta_key(uint32_t id) {
  std::string k = meta_key("table:");
  append_be(k, id, 4);
  return k;
}

// The smallest key greater than every key that starts with `prefix`.
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<uint8_t>(prefix.back()) != 0xFF) {
      prefix.back() = static_cast<char>(static_cast<uint8_t>(prefix.back()) + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  throw Error(ErrorCategory::kInternal, "no key follows an all-0xFF prefix");
}


std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// ---- metadata encoding: varints and length-prefixed strings (row_codec.h) ----

void put_str(std::string& out, std::string_view s) {
  append_varint(out, s.size());
  out += s;
}

std::string_view get_str(ByteReader& r, const char* what) {
  uint64_t n = read_varint(r, what);
  if (n > r.remaining()) throw Error(ErrorCategory::kDecode, std::string(what) + " too long");
  return r.read_text(static_cast<size_t>(n), what);
}

ByteReader reader(std::string_view s, const char* context) {
  return ByteReader({reinterpret_cast<const uint8_t*>(s.data()), s.size()}, context);
}

std::string encode_state(const StoreState& s) {
  std::string out;
  out.push_back(static_cast<char>(s.phase));
  put_str(out, s.system_id);
  put_str(out, s.database);
  put_str(out, s.slot);
  put_str(out, s.publication);
  out.push_back(s.created_publication ? 1 : 0);
  append_be(out, s.consistent_point.value, 8);
  append_be(out, s.applied_lsn.value, 8);
  put_str(out, s.last_commit_time);
  // Appended since format 1's first release (a state without it reads as timeline 0,
  // unknown).
  append_varint(out, s.timeline);
  return out;
}

StoreState decode_state(std::string_view v) {
  ByteReader r = reader(v, "store state");
  StoreState s;
  uint8_t phase = r.read_u8("phase");
  if (phase > static_cast<uint8_t>(StoreState::Phase::kStreaming))
    throw Error(ErrorCategory::kDecode, "unknown phase " + std::to_string(phase));
  s.phase = static_cast<StoreState::Phase>(phase);
  s.system_id = get_str(r, "system id");
  s.database = get_str(r, "database");
  s.slot = get_str(r, "slot");
  s.publication = get_str(r, "publication");
  s.created_publication = r.read_u8("created_publication") != 0;
  s.consistent_point = Lsn(r.read_u64("consistent point"));
  s.applied_lsn = Lsn(r.read_u64("applied lsn"));
  s.last_commit_time = get_str(r, "last commit time");
  if (r.remaining() > 0) {
    uint64_t tli = read_varint(r, "timeline");
    if (tli > UINT32_MAX) throw Error(ErrorCategory::kDecode, "timeline out of range");
    s.timeline = static_cast<uint32_t>(tli);
  }
  r.expect_end("store state");
  return s;
}

std::string encode_table(const TableEntry& t) {
  std::string out;
  append_varint(out, t.def.source_oid);
  put_str(out, t.def.schema);
  put_str(out, t.def.name);
  append_varint(out, t.def.columns.size());
  for (size_t i = 0; i < t.def.columns.size(); ++i) {
    const ColumnDef& c = t.def.columns[i];
    put_str(out, c.name);
    append_varint(out, c.type_oid);
    append_varint(out, c.base_type_oid);
    put_str(out, c.type_name);
    out.push_back(static_cast<char>(c.storage));
    append_varint(out, static_cast<uint64_t>(std::max(c.key_position, 0)));
    append_varint(out, t.slot[i]);
    out.push_back(t.missing[i] ? 1 : 0);
    if (t.missing[i]) put_str(out, *t.missing[i]);
  }
  append_varint(out, t.slot_count);
  // Since format 1's first release, appended (a definition without them reads as
  // unknown attnums and a zero copy point): the table's copy point and relfilenode, and each column's
  // attnum and type modifier (+1, so that -1 encodes as 0).
  append_varint(out, t.def.snapshot_lsn.value);
  append_varint(out, t.def.relfilenode);
  for (const ColumnDef& c : t.def.columns) {
    append_varint(out, static_cast<uint64_t>(std::max(c.attnum, 0)));
    append_varint(out, static_cast<uint64_t>(int64_t{c.type_mod} + 1));
  }
  return out;
}

TableEntry decode_table(uint32_t id, std::string_view v) {
  ByteReader r = reader(v, "table definition");
  auto bad = [](const std::string& what) { return Error(ErrorCategory::kDecode, what); };
  TableEntry t;
  t.def.id = id;
  t.def.source_oid = static_cast<uint32_t>(read_varint(r, "source oid"));
  t.def.schema = get_str(r, "schema");
  t.def.name = get_str(r, "name");
  uint64_t n = read_varint(r, "column count");
  if (n > r.remaining()) throw bad("column count exceeds the definition");
  for (uint64_t i = 0; i < n; ++i) {
    ColumnDef c;
    c.name = get_str(r, "column name");
    c.type_oid = static_cast<uint32_t>(read_varint(r, "type oid"));
    c.base_type_oid = static_cast<uint32_t>(read_varint(r, "base type oid"));
    c.type_name = get_str(r, "type name");
    uint8_t storage = r.read_u8("storage class");
    if (storage > static_cast<uint8_t>(StorageClass::kText)) throw bad("unknown storage class");
    c.storage = static_cast<StorageClass>(storage);
    c.key_position = static_cast<int>(read_varint(r, "key position"));
    t.slot.push_back(static_cast<uint32_t>(read_varint(r, "slot")));
    if (r.read_u8("missing flag") != 0)
      t.missing.emplace_back(std::string(get_str(r, "missing value")));
    else
      t.missing.emplace_back(std::nullopt);
    t.def.columns.push_back(std::move(c));
  }
  uint64_t slots = read_varint(r, "slot count");
  if (slots > (uint64_t{1} << 20) || slots < t.slot.size()) throw bad("bad slot count");
  t.slot_count = static_cast<uint32_t>(slots);
  if (r.remaining() > 0) {
    t.def.snapshot_lsn = Lsn(read_varint(r, "copy point"));
    uint64_t filenode = read_varint(r, "relfilenode");
    if (filenode > 0xFFFFFFFFu) throw bad("bad relfilenode");
    t.def.relfilenode = static_cast<uint32_t>(filenode);
    for (ColumnDef& c : t.def.columns) {
      uint64_t attnum = read_varint(r, "attnum");
      uint64_t typmod = read_varint(r, "type modifier");
      if (attnum > 1600 || typmod > uint64_t{0x80000000}) throw bad("bad column identity");
      c.attnum = static_cast<int>(attnum);
      c.type_mod = static_cast<int32_t>(int64_t(typmod) - 1);
    }
  }
  r.expect_end("table definition");
  std::vector<bool> used(t.slot_count, false);
  for (uint32_t s : t.slot) {
    if (s >= t.slot_count || used[s]) throw bad("bad column slot");
    used[s] = true;
  }
  t.finish();
  return t;
}

void decode_row(const TableEntry& t, std::string_view value, RowBuffers& buf, Row& out) {
  RowCodec::decode(value, buf.scratch, buf.cells);
  out.resize(t.def.columns.size());
  for (size_t i = 0; i < out.size(); ++i) {
    uint32_t s = t.slot[i];
    if (s < buf.cells.size())
      out[i] = buf.cells[s];
    else
      out[i] = t.missing[i] ? Datum::of(*t.missing[i]) : Datum::null();
  }
}

std::string key_of(const TableEntry& t, std::span<const std::string> key) {
  // A row with only the key columns set is all the key codec reads.
  Row probe(t.def.columns.size(), Datum::null());
  for (size_t i = 0; i < t.def.columns.size(); ++i)
    if (int kp = t.def.columns[i].key_position; kp > 0) probe[i] = Datum::of(key[size_t(kp - 1)]);
  return t.codec.encode(probe);
}

}  // namespace pgseed::rocksdb_layout
