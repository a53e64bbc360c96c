#include "fanout/fanout_wire.h"

#include <limits>

#include "common/bytes.h"
#include "pgseed/error.h"

namespace pgseed::fanout {

namespace {
[[noreturn]] void malformed(const std::string& what) {
  throw Error(ErrorCategory::kDecode, "pgseed fan-out message: " + what);
}
}  // namespace

void put_string(std::string& out, std::string_view s) {
  if (s.size() > std::numeric_limits<uint32_t>::max()) malformed("a value larger than 4 GB");
  append_be(out, s.size(), 4);
  out.append(s);
}

std::string_view get_string(ByteReader& in, const char* what) {
  uint32_t n = in.read_u32(what);
  return in.read_text(n, what);
}

void put_table_def(std::string& out, const TableDef& def) {
  append_be(out, def.source_oid, 4);
  put_string(out, def.schema);
  put_string(out, def.name);
  append_be(out, def.snapshot_lsn.value, 8);
  append_be(out, def.relfilenode, 4);
  append_be(out, def.columns.size(), 2);
  for (const auto& c : def.columns) {
    put_string(out, c.name);
    append_be(out, c.type_oid, 4);
    append_be(out, c.base_type_oid, 4);
    put_string(out, c.type_name);
    out.push_back(static_cast<char>(c.storage));
    append_be(out, static_cast<uint16_t>(c.key_position), 2);
    append_be(out, static_cast<uint16_t>(c.attnum), 2);
    append_be(out, static_cast<uint32_t>(c.type_mod), 4);
  }
}

TableDef get_table_def(ByteReader& in) {
  TableDef def;
  def.source_oid = in.read_u32("table oid");
  def.schema = get_string(in, "table schema");
  def.name = get_string(in, "table name");
  def.snapshot_lsn = Lsn(in.read_u64("table copy point"));
  def.relfilenode = in.read_u32("table relfilenode");
  uint16_t n = in.read_u16("column count");
  def.columns.reserve(n);
  for (uint16_t i = 0; i < n; ++i) {
    ColumnDef c;
    c.name = get_string(in, "column name");
    c.type_oid = in.read_u32("column type");
    c.base_type_oid = in.read_u32("column base type");
    c.type_name = get_string(in, "column type name");
    uint8_t storage = in.read_u8("column storage class");
    if (storage > static_cast<uint8_t>(StorageClass::kText))
      malformed("unknown storage class " + std::to_string(storage));
    c.storage = static_cast<StorageClass>(storage);
    c.key_position = in.read_i16("column key position");
    c.attnum = in.read_i16("column attnum");
    c.type_mod = in.read_i32("column type modifier");
    if (c.key_position < 0 || c.key_position > n) malformed("key position out of range");
    def.columns.push_back(std::move(c));
  }
  return def;
}

void put_row(std::string& out, std::span<const Datum> row) {
  if (row.size() > std::numeric_limits<uint16_t>::max()) malformed("a row of more than 65535 columns");
  append_be(out, row.size(), 2);
  for (const Datum& d : row) {
    switch (d.kind) {
      case Datum::Kind::kNull:
        out.push_back('n');
        break;
      case Datum::Kind::kUnchanged:
        out.push_back('u');
        break;
      case Datum::Kind::kText:
        out.push_back('t');
        put_string(out, d.text);
        break;
    }
  }
}

void get_row(ByteReader& in, Row& out) {
  out.clear();
  uint16_t n = in.read_u16("row column count");
  out.reserve(n);
  for (uint16_t i = 0; i < n; ++i) {
    uint8_t kind = in.read_u8("value kind");
    if (kind == 'n') out.push_back(Datum::null());
    else if (kind == 'u') out.push_back(Datum::unchanged());
    else if (kind == 't') out.push_back(Datum::of(get_string(in, "value")));
    else malformed("unknown value kind " + std::to_string(kind));
  }
}

}  // namespace pgseed::fanout
