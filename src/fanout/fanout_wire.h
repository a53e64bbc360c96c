// The parts that pgseed's fan-out messages (txn_codec.h, snapshot_codec.h) share: a table's
// definition and a row, each as bytes. Pure encoding: no I/O. The format is documented in
// src/fanout/ENCODING.md; every integer is big-endian, every read goes through ByteReader.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/byte_reader.h"
#include "model/row.h"
#include "model/table_def.h"

namespace pgseed::fanout {

// A message's bytes (a NATS message body, or transaction parts put together) as the
// decoders take them.
inline std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Appends `s` as u32 length + bytes.
void put_string(std::string& out, std::string_view s);
std::string_view get_string(ByteReader& in, const char* what);

// A table definition: the store's TableDef without the store's own fields (id,
// sqlite_name), which each store assigns for itself.
void put_table_def(std::string& out, const TableDef& def);
TableDef get_table_def(ByteReader& in);

// A row: u16 column count, then per column one kind byte ('n' null, 'u' unchanged TOASTed
// value, 't' text: u32 length + bytes). Decoded Datum views point into the reader's buffer.
void put_row(std::string& out, std::span<const Datum> row);
void get_row(ByteReader& in, Row& out);

}  // namespace pgseed::fanout
