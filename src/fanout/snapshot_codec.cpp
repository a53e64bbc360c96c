#include "fanout/snapshot_codec.h"

#include "common/byte_reader.h"
#include "common/bytes.h"
#include "fanout/fanout_wire.h"
#include "pgseed/error.h"

namespace pgseed::fanout {

namespace {
constexpr uint8_t kSnapshotFormatVersion = 1;
// A chunk: "PGS", version, 'C', LSN, table oid, then the row count (offset 17).
constexpr size_t kChunkRowCountAt = 17;

[[noreturn]] void malformed(const std::string& what) {
  throw Error(ErrorCategory::kDecode, "pgseed snapshot message: " + what);
}

std::string header(char kind) {
  std::string out = "PGS";
  out.push_back(static_cast<char>(kSnapshotFormatVersion));
  out.push_back(kind);
  return out;
}
}  // namespace

std::string encode_snapshot_header(const SnapshotHeader& h) {
  std::string out = header('H');
  append_be(out, h.lsn.value, 8);
  put_string(out, h.system_id);
  put_string(out, h.database);
  put_string(out, h.slot);
  put_string(out, h.publication);
  append_be(out, h.timeline, 4);
  append_be(out, h.marker_seq, 8);
  append_be(out, h.tables.size(), 4);
  for (const auto& t : h.tables) put_table_def(out, t);
  return out;
}

std::string begin_snapshot_chunk(Lsn lsn, uint32_t table_oid) {
  std::string out = header('C');
  append_be(out, lsn.value, 8);
  append_be(out, table_oid, 4);
  append_be(out, 0, 4);
  return out;
}

void add_snapshot_row(std::string& chunk, std::span<const Datum> row) { put_row(chunk, row); }

void finish_snapshot_chunk(std::string& chunk, uint32_t rows) {
  for (int i = 0; i < 4; ++i)
    chunk[kChunkRowCountAt + i] = static_cast<char>((rows >> (8 * (3 - i))) & 0xFF);
}

std::string encode_snapshot_end(const SnapshotEnd& e) {
  std::string out = header('E');
  append_be(out, e.lsn.value, 8);
  append_be(out, e.header_seq, 8);
  append_be(out, e.chunks, 8);
  return out;
}

SnapshotMessage decode_snapshot_message(std::span<const uint8_t> data) {
  ByteReader in(data, "pgseed snapshot message");
  if (in.read_text(3, "magic") != "PGS") malformed("not a pgseed message (no PGS magic)");
  uint8_t version = in.read_u8("version");
  if (version != kSnapshotFormatVersion)
    malformed("format version " + std::to_string(version) + ", this pgseed reads version " +
              std::to_string(kSnapshotFormatVersion) + " (upgrade pgseed on this edge)");
  SnapshotMessage m;
  char kind = static_cast<char>(in.read_u8("message kind"));
  if (kind == 'H') {
    m.kind = SnapshotMessage::Kind::kHeader;
    SnapshotHeader& h = m.header;
    h.lsn = Lsn(in.read_u64("snapshot LSN"));
    h.system_id = get_string(in, "system id");
    h.database = get_string(in, "database");
    h.slot = get_string(in, "slot");
    h.publication = get_string(in, "publication");
    h.timeline = in.read_u32("timeline");
    h.marker_seq = in.read_u64("marker sequence");
    uint32_t n = in.read_u32("table count");
    for (uint32_t i = 0; i < n; ++i) h.tables.push_back(get_table_def(in));
  } else if (kind == 'C') {
    m.kind = SnapshotMessage::Kind::kChunk;
    m.chunk.lsn = Lsn(in.read_u64("snapshot LSN"));
    m.chunk.table_oid = in.read_u32("table oid");
    uint32_t rows = in.read_u32("row count");
    // Each row takes at least its 2-byte column count: a count the bytes cannot hold is
    // refused before anything is reserved for it.
    if (rows > in.remaining() / 2) malformed("row count larger than the chunk");
    m.chunk.rows.resize(rows);
    for (auto& r : m.chunk.rows) get_row(in, r);
  } else if (kind == 'E') {
    m.kind = SnapshotMessage::Kind::kEnd;
    m.end.lsn = Lsn(in.read_u64("snapshot LSN"));
    m.end.header_seq = in.read_u64("header sequence");
    m.end.chunks = in.read_u64("chunk count");
  } else {
    malformed("unknown message kind " + std::to_string(static_cast<uint8_t>(kind)));
  }
  in.expect_end("snapshot message");
  return m;
}

}  // namespace pgseed::fanout
