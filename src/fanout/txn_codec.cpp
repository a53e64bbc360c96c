#include "fanout/txn_codec.h"

#include <algorithm>

#include "common/byte_reader.h"
#include "common/bytes.h"
#include "fanout/fanout_wire.h"
#include "pgseed/error.h"

namespace pgseed::fanout {

namespace {
constexpr char kMagic[3] = {'P', 'G', 'S'};
constexpr size_t kHeaderBytes = 5;
constexpr size_t kPartHeaderBytes = kHeaderBytes + 8 + 4 + 4;
// A Transaction record starts with 'X', the commit LSN, the end LSN (offset 9), the commit
// time and the record count (offset 25).
constexpr size_t kEndLsnAt = 9;
constexpr size_t kRecordCountAt = 25;

[[noreturn]] void malformed(const std::string& what) {
  throw Error(ErrorCategory::kDecode, "pgseed change message: " + what);
}

std::string header(char kind) {
  std::string out(kMagic, sizeof kMagic);
  out.push_back(static_cast<char>(kTxnFormatVersion));
  out.push_back(kind);
  return out;
}

void put_u64_at(std::string& out, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[at + i] = static_cast<char>((v >> (8 * (7 - i))) & 0xFF);
}

Transaction read_transaction(ByteReader& in) {
  if (in.read_u8("transaction tag") != 'X') malformed("a transaction record does not start with 'X'");
  Transaction t;
  t.final_lsn = Lsn(in.read_u64("commit LSN"));
  t.end_lsn = Lsn(in.read_u64("end LSN"));
  t.commit_time = in.read_i64("commit time");
  uint32_t records = in.read_u32("record count");
  for (uint32_t i = 0; i < records; ++i) {
    char kind = static_cast<char>(in.read_u8("record kind"));
    if (kind == 'R') {
      t.tables.push_back(get_table_def(in));
      continue;
    }
    Change c;
    c.kind = kind;
    c.table_oid = in.read_u32("change table oid");
    switch (kind) {
      case 'I':
        get_row(in, c.new_row);
        break;
      case 'U':
        c.old_kind = static_cast<char>(in.read_u8("old row kind"));
        if (c.old_kind != 0 && c.old_kind != 'K' && c.old_kind != 'O') malformed("unknown old row kind");
        if (c.old_kind != 0) get_row(in, c.old_row);
        get_row(in, c.new_row);
        break;
      case 'D':
        c.old_kind = static_cast<char>(in.read_u8("old row kind"));
        if (c.old_kind != 'K' && c.old_kind != 'O') malformed("unknown old row kind");
        get_row(in, c.old_row);
        break;
      case 'T':
        break;
      default:
        malformed("unknown record kind " + std::to_string(static_cast<uint8_t>(kind)));
    }
    bool known = std::any_of(t.tables.begin(), t.tables.end(),
                             [&](const TableDef& d) { return d.source_oid == c.table_oid; });
    if (!known) malformed("a change to table " + std::to_string(c.table_oid) + " before its definition");
    t.changes.push_back(std::move(c));
  }
  return t;
}
}  // namespace

void TxnEncoder::begin(Lsn final_lsn, int64_t commit_time) {
  buf_.clear();
  tables_.clear();
  records_ = 0;
  changes_ = 0;
  open_ = true;
  buf_.push_back('X');
  append_be(buf_, final_lsn.value, 8);
  append_be(buf_, 0, 8);  // the end LSN, set by commit()
  append_be(buf_, static_cast<uint64_t>(commit_time), 8);
  append_be(buf_, 0, 4);  // the record count, set by commit()
}

void TxnEncoder::record(char kind, const TableDef& t) {
  if (std::find(tables_.begin(), tables_.end(), t.source_oid) == tables_.end()) {
    buf_.push_back('R');
    put_table_def(buf_, t);
    tables_.push_back(t.source_oid);
    ++records_;
  }
  buf_.push_back(kind);
  append_be(buf_, t.source_oid, 4);
  ++records_;
  ++changes_;
}

void TxnEncoder::insert(const TableDef& t, std::span<const Datum> row) {
  record('I', t);
  put_row(buf_, row);
}

void TxnEncoder::update(const TableDef& t, char old_kind, std::span<const Datum> old_row,
                        std::span<const Datum> new_row) {
  record('U', t);
  buf_.push_back(old_kind);
  if (old_kind != 0) put_row(buf_, old_row);
  put_row(buf_, new_row);
}

void TxnEncoder::remove(const TableDef& t, char old_kind, std::span<const Datum> old_row) {
  record('D', t);
  buf_.push_back(old_kind);
  put_row(buf_, old_row);
}

void TxnEncoder::truncate(const TableDef& t) { record('T', t); }

std::string TxnEncoder::commit(Lsn end_lsn) {
  put_u64_at(buf_, kEndLsnAt, end_lsn.value);
  for (int i = 0; i < 4; ++i) buf_[kRecordCountAt + i] = static_cast<char>((records_ >> (8 * (3 - i))) & 0xFF);
  open_ = false;
  return std::move(buf_);
}

size_t transactions_message_size(size_t records_bytes) {
  return kHeaderBytes + 4 + records_bytes;
}

std::string encode_transactions(std::span<const std::string> records) {
  std::string out = header('T');
  append_be(out, records.size(), 4);
  for (const auto& r : records) out += r;
  return out;
}

std::vector<std::string> encode_parts(Lsn final_lsn, std::string_view record, size_t max_bytes) {
  if (max_bytes <= kPartHeaderBytes) malformed("message size limit too small");
  size_t slice = max_bytes - kPartHeaderBytes;
  uint32_t count = static_cast<uint32_t>((record.size() + slice - 1) / slice);
  std::vector<std::string> out;
  for (uint32_t i = 0; i < count; ++i) {
    std::string m = header('P');
    append_be(m, final_lsn.value, 8);
    append_be(m, i, 4);
    append_be(m, count, 4);
    m.append(record.substr(size_t(i) * slice, slice));
    out.push_back(std::move(m));
  }
  return out;
}

std::string encode_tables_resynced(Lsn point) {
  std::string out = header('S');
  append_be(out, point.value, 8);
  return out;
}

std::string encode_position(Lsn position) {
  std::string out = header('L');
  append_be(out, position.value, 8);
  return out;
}

Message decode_message(std::span<const uint8_t> data) {
  ByteReader in(data, "pgseed change message");
  std::string_view magic = in.read_text(3, "magic");
  if (magic != std::string_view(kMagic, 3)) malformed("not a pgseed message (no PGS magic)");
  uint8_t version = in.read_u8("version");
  if (version < kOldestTxnFormatVersion || version > kTxnFormatVersion)
    malformed("format version " + std::to_string(version) + ", this pgseed reads versions " +
              std::to_string(kOldestTxnFormatVersion) + " to " + std::to_string(kTxnFormatVersion) +
              " (upgrade pgseed on this edge)");
  Message m;
  char kind = static_cast<char>(in.read_u8("message kind"));
  if (kind == 'T') {
    m.kind = Message::Kind::kTransactions;
    uint32_t n = in.read_u32("transaction count");
    for (uint32_t i = 0; i < n; ++i) m.transactions.push_back(read_transaction(in));
  } else if (kind == 'P') {
    m.kind = Message::Kind::kPart;
    m.lsn = Lsn(in.read_u64("part commit LSN"));
    m.part_index = in.read_u32("part index");
    m.part_count = in.read_u32("part count");
    if (m.part_index >= m.part_count) malformed("part index beyond part count");
    m.part = in.read_text(in.remaining(), "part");
  } else if (kind == 'S') {
    m.kind = Message::Kind::kTablesResynced;
    m.lsn = Lsn(in.read_u64("resync point"));
  } else if (kind == 'L' && version >= 2) {
    m.kind = Message::Kind::kPosition;
    m.lsn = Lsn(in.read_u64("position"));
  } else {
    malformed("unknown message kind " + std::to_string(static_cast<uint8_t>(kind)));
  }
  in.expect_end("change message");
  return m;
}

Transaction decode_transaction(std::span<const uint8_t> record) {
  ByteReader in(record, "pgseed change message");
  Transaction t = read_transaction(in);
  in.expect_end("transaction record");
  return t;
}

}  // namespace pgseed::fanout
