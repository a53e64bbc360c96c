#include "decode/pgoutput.h"

#include <cstdio>
#include <string>

#include "common/byte_reader.h"
#include "pgseed/error.h"

namespace pgseed {
namespace {

[[noreturn]] void fail(const std::string& message) {
  throw Error(ErrorCategory::kDecode, "pgoutput: " + message);
}

// "'I' (0x49)" for printable bytes, "0x01" otherwise: the byte is untrusted input.
std::string describe_byte(uint8_t b) {
  char buf[16];
  if (b >= 0x20 && b < 0x7f) {
    std::snprintf(buf, sizeof buf, "'%c' (0x%02x)", static_cast<char>(b), b);
  } else {
    std::snprintf(buf, sizeof buf, "0x%02x", b);
  }
  return buf;
}

uint32_t read_stream_xid(ByteReader& r, bool in_stream) {
  return in_stream ? r.read_u32("xid") : 0;
}

// TupleData: Int16 column count, then per column a kind byte and for 't'/'b' an Int32
// length and the value bytes.
Row read_tuple(ByteReader& r) {
  uint16_t ncols = r.read_u16("tuple column count");
  // Every column takes at least its kind byte: refuse a count the buffer cannot hold before
  // reserving memory for it.
  if (ncols > r.remaining()) {
    fail("tuple claims " + std::to_string(ncols) + " columns but only " +
         std::to_string(r.remaining()) + " bytes remain");
  }
  Row row;
  row.reserve(ncols);
  for (uint16_t i = 0; i < ncols; ++i) {
    uint8_t kind = r.read_u8("tuple column kind");
    switch (kind) {
      case 'n':
        row.push_back(Datum::null());
        break;
      case 'u':
        // Unchanged TOASTed value: the server sent nothing; the stored value stays.
        row.push_back(Datum::unchanged());
        break;
      case 't': {
        int32_t len = r.read_i32("tuple value length");
        if (len < 0) fail("negative value length " + std::to_string(len));
        row.push_back(Datum::of(r.read_text(static_cast<size_t>(len), "tuple value")));
        break;
      }
      case 'b':
        fail("binary tuple value in column " + std::to_string(i) +
             " (pgseed requests text format; was the 'binary' option set?)");
      default:
        fail("unknown tuple column kind " + describe_byte(kind) + " in column " +
             std::to_string(i));
    }
  }
  return row;
}

void expect_new_tuple_marker(ByteReader& r) {
  uint8_t marker = r.read_u8("new tuple marker");
  if (marker != 'N') fail("expected new tuple marker 'N', got " + describe_byte(marker));
}

Begin decode_begin(ByteReader& r) {
  Begin m;
  m.final_lsn = Lsn(r.read_u64("begin final_lsn"));
  m.commit_time = r.read_i64("begin commit_time");
  m.xid = r.read_u32("begin xid");
  return m;
}

Commit decode_commit(ByteReader& r) {
  Commit m;
  m.flags = r.read_u8("commit flags");
  m.commit_lsn = Lsn(r.read_u64("commit lsn"));
  m.end_lsn = Lsn(r.read_u64("commit end_lsn"));
  m.commit_time = r.read_i64("commit commit_time");
  return m;
}

Origin decode_origin(ByteReader& r) {
  Origin m;
  m.lsn = Lsn(r.read_u64("origin lsn"));
  m.name = std::string(r.read_cstring("origin name"));
  return m;
}

Relation decode_relation(ByteReader& r, bool in_stream) {
  Relation m;
  m.xid = read_stream_xid(r, in_stream);
  m.oid = r.read_u32("relation oid");
  m.nspname = std::string(r.read_cstring("relation namespace"));
  m.relname = std::string(r.read_cstring("relation name"));
  m.replica_identity = static_cast<char>(r.read_u8("relation replica identity"));
  uint16_t ncols = r.read_u16("relation column count");
  // A column is at least 10 bytes (flags, empty name's NUL, type oid, typmod).
  constexpr size_t kMinColumnBytes = 10;
  if (ncols > r.remaining() / kMinColumnBytes) {
    fail("relation claims " + std::to_string(ncols) + " columns but only " +
         std::to_string(r.remaining()) + " bytes remain");
  }
  m.columns.reserve(ncols);
  for (uint16_t i = 0; i < ncols; ++i) {
    RelationColumn c;
    c.key = (r.read_u8("relation column flags") & 1) != 0;
    c.name = std::string(r.read_cstring("relation column name"));
    c.type_oid = r.read_u32("relation column type oid");
    c.type_mod = r.read_i32("relation column typmod");
    m.columns.push_back(std::move(c));
  }
  return m;
}

TypeMsg decode_type(ByteReader& r, bool in_stream) {
  TypeMsg m;
  m.xid = read_stream_xid(r, in_stream);
  m.oid = r.read_u32("type oid");
  m.nspname = std::string(r.read_cstring("type namespace"));
  m.name = std::string(r.read_cstring("type name"));
  return m;
}

Insert decode_insert(ByteReader& r, bool in_stream) {
  Insert m;
  m.xid = read_stream_xid(r, in_stream);
  m.relid = r.read_u32("insert relation oid");
  expect_new_tuple_marker(r);
  m.new_tuple = read_tuple(r);
  return m;
}

Update decode_update(ByteReader& r, bool in_stream) {
  Update m;
  m.xid = read_stream_xid(r, in_stream);
  m.relid = r.read_u32("update relation oid");
  uint8_t marker = r.read_u8("update tuple marker");
  if (marker == 'K' || marker == 'O') {
    m.old_kind = static_cast<char>(marker);
    m.old_tuple = read_tuple(r);
    marker = r.read_u8("update new tuple marker");
  }
  if (marker != 'N') {
    fail("expected update tuple marker 'K', 'O' or 'N', got " + describe_byte(marker));
  }
  m.new_tuple = read_tuple(r);
  return m;
}

Delete decode_delete(ByteReader& r, bool in_stream) {
  Delete m;
  m.xid = read_stream_xid(r, in_stream);
  m.relid = r.read_u32("delete relation oid");
  uint8_t marker = r.read_u8("delete tuple marker");
  if (marker != 'K' && marker != 'O') {
    fail("expected delete tuple marker 'K' or 'O', got " + describe_byte(marker));
  }
  m.old_kind = static_cast<char>(marker);
  m.old_tuple = read_tuple(r);
  return m;
}

Truncate decode_truncate(ByteReader& r, bool in_stream) {
  constexpr uint8_t kCascade = 1;
  constexpr uint8_t kRestartIdentity = 2;
  Truncate m;
  m.xid = read_stream_xid(r, in_stream);
  uint32_t nrels = r.read_u32("truncate relation count");
  uint8_t options = r.read_u8("truncate options");
  m.cascade = (options & kCascade) != 0;
  m.restart_identity = (options & kRestartIdentity) != 0;
  if (nrels > r.remaining() / 4) {
    fail("truncate claims " + std::to_string(nrels) + " relations but only " +
         std::to_string(r.remaining()) + " bytes remain");
  }
  m.relids.reserve(nrels);
  for (uint32_t i = 0; i < nrels; ++i) m.relids.push_back(r.read_u32("truncate relation oid"));
  return m;
}

LogicalMessage decode_message(ByteReader& r, bool in_stream) {
  LogicalMessage m;
  m.xid = read_stream_xid(r, in_stream);
  m.transactional = (r.read_u8("message flags") & 1) != 0;
  m.lsn = Lsn(r.read_u64("message lsn"));
  m.prefix = std::string(r.read_cstring("message prefix"));
  int32_t len = r.read_i32("message content length");
  if (len < 0) fail("negative message content length " + std::to_string(len));
  m.content = std::string(r.read_text(static_cast<size_t>(len), "message content"));
  return m;
}

StreamStart decode_stream_start(ByteReader& r) {
  StreamStart m;
  m.xid = r.read_u32("stream start xid");
  m.first_segment = r.read_u8("stream start first_segment") != 0;
  return m;
}

StreamCommit decode_stream_commit(ByteReader& r) {
  StreamCommit m;
  m.xid = r.read_u32("stream commit xid");
  m.flags = r.read_u8("stream commit flags");
  m.commit_lsn = Lsn(r.read_u64("stream commit lsn"));
  m.end_lsn = Lsn(r.read_u64("stream commit end_lsn"));
  m.commit_time = r.read_i64("stream commit commit_time");
  return m;
}

StreamAbort decode_stream_abort(ByteReader& r) {
  StreamAbort m;
  m.xid = r.read_u32("stream abort xid");
  m.subxid = r.read_u32("stream abort subxid");
  return m;
}

PgOutputMessage decode_body(uint8_t type, ByteReader& r, bool in_stream) {
  switch (type) {
    case 'B':
      return decode_begin(r);
    case 'C':
      return decode_commit(r);
    case 'O':
      return decode_origin(r);
    case 'R':
      return decode_relation(r, in_stream);
    case 'Y':
      return decode_type(r, in_stream);
    case 'I':
      return decode_insert(r, in_stream);
    case 'U':
      return decode_update(r, in_stream);
    case 'D':
      return decode_delete(r, in_stream);
    case 'T':
      return decode_truncate(r, in_stream);
    case 'M':
      return decode_message(r, in_stream);
    case 'S':
      return decode_stream_start(r);
    case 'E':
      return StreamStop{};
    case 'c':
      return decode_stream_commit(r);
    case 'A':
      return decode_stream_abort(r);
    default:
      fail("unknown message type " + describe_byte(type));
  }
}

}  // namespace

PgOutputMessage decode_pgoutput(std::span<const uint8_t> data, bool in_stream) {
  ByteReader r(data, "pgoutput");
  uint8_t type = r.read_u8("pgoutput message type");
  PgOutputMessage message = decode_body(type, r, in_stream);
  if (!r.at_end()) {
    fail("message " + describe_byte(type) + " has " + std::to_string(r.remaining()) +
         " trailing bytes after offset " + std::to_string(r.position()));
  }
  return message;
}

}  // namespace pgseed
