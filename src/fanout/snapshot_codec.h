// The snapshot stream's messages (version 1): a hub's store, consistent at one LSN, in
// chunks that each fit a NATS message. Pure encoding and decoding of bytes;
// src/fanout/ENCODING.md is the reference.
//
// A snapshot is published as: one header ('H': the LSN, the hub's source identity, the
// resync marker it follows, the table definitions), then
// chunks ('C': rows of one table), then an end message ('E': the header's stream sequence
// and the number of chunks). Only a snapshot whose end message is in the stream is whole.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model/row.h"
#include "model/table_def.h"
#include "pgseed/lsn.h"

namespace pgseed::fanout {

struct SnapshotHeader {
  Lsn lsn;                  // the hub store's applied LSN: every transaction before it is in
  std::string system_id;    // the hub's source (StoreState)
  std::string database;
  std::string slot;
  std::string publication;
  uint32_t timeline = 0;
  // The change stream's sequence of the resync marker this snapshot follows (0: none, the
  // stream's first snapshot): an edge restored from it is past that marker.
  uint64_t marker_seq = 0;
  std::vector<TableDef> tables;
};

struct SnapshotChunk {
  Lsn lsn;
  uint32_t table_oid = 0;
  std::vector<Row> rows;    // views into the decoded buffer
};

struct SnapshotEnd {
  Lsn lsn;
  uint64_t header_seq = 0;  // the snapshot stream's sequence of the header
  uint64_t chunks = 0;      // chunk messages between the header and this end message
};

std::string encode_snapshot_header(const SnapshotHeader& h);
// Starts a chunk of `table_oid`'s rows; add_row appends one; finish_chunk sets the count.
std::string begin_snapshot_chunk(Lsn lsn, uint32_t table_oid);
void add_snapshot_row(std::string& chunk, std::span<const Datum> row);
void finish_snapshot_chunk(std::string& chunk, uint32_t rows);
std::string encode_snapshot_end(const SnapshotEnd& e);

struct SnapshotMessage {
  enum class Kind { kHeader, kChunk, kEnd } kind = Kind::kHeader;
  SnapshotHeader header;
  SnapshotChunk chunk;
  SnapshotEnd end;
};
// Throws Error(kDecode) on anything malformed; never reads outside `data`.
SnapshotMessage decode_snapshot_message(std::span<const uint8_t> data);

}  // namespace pgseed::fanout
