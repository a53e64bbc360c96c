#include "store/rocksdb_store.h"

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

// Durability, and why a kill -9 during the initial copy is always recognised.
//
// Every store transaction is one rocksdb::WriteBatch, applied atomically by commit(). The
// metadata it changes (state with its applied LSN, table definitions, id counters) goes in
// the same batch as the rows, so no reader and no recovery ever sees rows without the state
// that covers them, or the reverse.
//
// Outside the copy, the batch is written with sync=true: commit() returns after the WAL is
// on disk, and the LSN it recorded may be confirmed to the server.
//
// During the copy (the state as last committed is kCopying, and this transaction keeps it
// so), the batch is written with disableWAL: rows reach only the memtable, and become
// durable when RocksDB flushes it to an SST file. A crash loses some suffix of those
// batches. That is harmless because of two facts:
//   1. The state that says kCopying was committed durably (through the WAL) before any
//      row of the copy was written: the transaction that entered kCopying left kEmpty, so
//      it was not a copy batch.
//   2. Before any batch that goes through the WAL — above all the one that moves the phase
//      to kStreaming — commit() calls Flush(wait=true) if copy batches were written since
//      the last flush. So every copy batch is in an SST file before a later WAL record can
//      exist, and what survives a crash is always a prefix of the commit sequence
//      (memtables flush in order, and a batch never spans two memtables).
// Hence after a crash either the durable phase is still kCopying (and the partial copy is
// recognised as incomplete, then discarded with reset()), or the phase-changing commit
// reached the WAL after the flush, and every row of the copy is durable with it.
// The price is that commit() during kCopying does not promise durability; nothing is
// confirmed to the server during the copy, so nothing relies on it.
//
// Large transactions: bounded memory, same atomicity.
//
// Outside the copy, a transaction's writes wait in memory (the WriteBatch, plus the Overlay
// map for reads inside the transaction) until commit(). When they outgrow spill_bytes
// (8 MB), they are spilled: written to the overlay range  FF FF FF FF 00 + row key  as
// 'P' + value or 'D', with the WAL but without sync, and dropped from memory (the batch is
// no longer kept: from then on the transaction is the overlay on disk + the map in memory +
// the list of ranges it deleted). Range deletes (truncate, drop, reset, a rewrite) stay in
// memory as a short list; one that comes after a spill also deletes the overlay's entries
// in its range at once, so every overlay entry is newer than every range delete covering
// it. A read inside the transaction takes the first answer of: the map, the overlay, (not
// under a deleted range) the rows. commit() of a spilled transaction writes ONE synced
// batch, the commit record: the range deletes applied to the rows, the metadata (state
// with its applied LSN, table definitions, counters), the writes still in memory (into the
// overlay: they are newer than the overlay's), and merge_pending. Then it merges: copies
// the overlay into the rows in chunks (WAL, no sync) and ends with one synced batch that
// deletes the overlay range and merge_pending. open() first finishes a pending merge, or
// else deletes whatever the overlay range holds.
//
// Why a crash at any moment leaves all of the transaction or none of it:
//   - The overlay range is read only by the transaction that wrote it and by a merge, and
//     a merge runs only after merge_pending was committed. Before the commit record,
//     nothing outside the overlay range has changed (metadata and state are written only
//     by the commit record), so a crash leaves the old state exactly; open() sees no
//     merge_pending and deletes the leftovers (also a rollback's, should its delete be
//     lost). begin() starts only on an empty overlay range: open() and rollback() clear
//     it, and a failed clear is retried by the next begin().
//   - The commit record is atomic (one WriteBatch) and synced; syncing the WAL syncs every
//     earlier WAL record too (RocksDB syncs all live WAL files; the ones it dropped were
//     flushed to SST files first), so once it is durable every spilled entry is durable.
//     From then on the transaction is committed: state and metadata are the new ones, the
//     rows covered by its range deletes are gone, and the overlay holds the final value
//     of every other key it wrote.
//   - The merge is idempotent: it copies final values (put or delete) of keys, and no
//     other write happens between the commit record and the end of the merge (commit()
//     returns only after it; open() runs it before anything reads). A crash during it
//     leaves merge_pending set and the overlay intact (it is deleted only by the last,
//     synced, batch together with merge_pending), so open() copies the overlay again and
//     gets the same rows. Nothing reads the rows before the merge is complete.
//   - A spill write (WAL) is never preceded by unflushed copy batches: spill() flushes
//     them first, as commit() does, so the copy argument above still holds.
// A merge that fails inside commit() (I/O error) leaves the transaction committed but the
// rows unmerged: the store refuses further transactions, and the next open() merges.
//
// alter_table rewrites a table under new keys: it reads the table in chunks (2 MB) and,
// for a big table, parks the rewritten rows in the scratch range  FF FF FF FF 01,
// then deletes the table's range and writes them back through put() (which spills).
// Scratch content is only ever read by the rewrite that wrote it (it clears the scratch
// range first), and open() deletes it with the rest of the overlay range.
//
// The initial copy as a bulk load (begin/finish/abort_bulk_load, store.h).
//
// Between begin_bulk_load() and finish_bulk_load(), insert_batch() does not write rows to
// the database at all: it appends them to SST files (rocksdb::SstFileWriter) in the
// scratch directory <store>/pgseed-bulk, and finish_bulk_load() ingests those files
// (IngestExternalFile, hard-linked into the store), then commits the final state. No WAL,
// no memtable, no flush and, when the files do not overlap, no compaction: each row is
// encoded and written once.
//   - An SST file needs strictly increasing keys. A table keeps up to kBulkRunsPerTable
//     runs, each writing its files one after another: a row goes to the run whose last
//     written key is the greatest one below it, else to a new run (replacing one idle for
//     kBulkIdleRows rows when there are enough), else (rows far out of order, e.g. a
//     keyless table, whose keys start with the column values) to a sort buffer of
//     kBulkSortBytes that is written, sorted, as one more file when full. A run's rows
//     wait in a min-heap of kBulkRunBytes (all runs: at most kBulkBufferedBytes) before
//     they are written smallest first, which absorbs local disorder (the rows of one
//     insert stream spread over heap pages filled out of order). Interleaved streams (two
//     sessions' inserts, a synchronized scan starting mid-table, parallel workers) thus
//     settle into one run each. When a row lands inside the key range of the next run's
//     open file (that run jumped over this one's keys), that file is closed, so that the
//     file spanning the jump stays small. Files are closed at kBulkFileBytes. On the
//     benchmark's events table (rows of ~14 streams, interleaved row by row and page by
//     page) this puts ~90% of the bytes in the bottom level and leaves ~2 MB in L0.
//     LZ4 (as the store's own files): no compression would save ~20% of the copy's CPU
//     but nearly double the store's size for good (bottom-level files are not rewritten).
//   - Ingestion goes in rounds: each round ingests, in one call, a set of mutually
//     disjoint files of greatest total size (weighted interval scheduling); RocksDB puts
//     each at the lowest level it does not overlap, so disjoint files go to the bottom
//     level with sequence number 0 and are never compacted again. Later rounds overlap
//     earlier ones and land in the levels above (or in L0), with a global sequence number.
//   - begin_bulk_load() compacts the table key range first: the reset() that preceded it
//     left a range tombstone over every table, which ingested files would overlap; the
//     compaction (cheap on an empty store) drops it. Auto compactions are off during the
//     bulk load (nothing should run while files go in) and back on after it.
//   - Durability: rows in the files are reachable only once ingested, and then only by
//     key ranges of tables whose definitions say what they are. A commit that records
//     tables' copy points (set_sync_state, when the copy has stored all their rows)
//     first finishes and ingests their files (IngestExternalFile links each file into
//     the store and syncs it before it records the call, atomically, in the MANIFEST;
//     every other finished file goes in with them), then writes the transaction through
//     the WAL, synced: from then on those tables survive a crash with their rows. Other
//     copy batches (definitions of tables still being copied) go without the WAL; a
//     state written in the copy phase (the slot's consistent point) goes through it.
//     finish_bulk_load(): finish and ingest the rest, flush the memtable, then commit
//     final_state with sync=true. The scratch directory is removed at open, at begin,
//     after ingestion and on abort.
//   - Resuming: begin_bulk_load() on a store whose interrupted copy (phase kCopying)
//     committed some tables' copy points keeps those tables and empties every other
//     table id's range (rows of unfinished tables may have been ingested beside finished
//     ones, their definitions lost with the memtable); the copy goes on with new ids.
//   - During the bulk load only create_table, insert_batch, set_sync_state and
//     write_state (phase kCopying) may write; rows appended to the files are visible to
//     reads only once ingested. A rollback inside the bulk load cannot take its rows back out of
//     the files, so it makes finish_bulk_load() fail (the caller aborts, as it does after
//     any failure of the copy).

namespace pgseed {

namespace {
constexpr size_t kCopyFlushBytes = 4u << 20;   // write copied rows in ~4 MB batches
constexpr size_t kDefaultSpillBytes = 8u << 20;  // a transaction spills above this in memory
constexpr size_t kChunkBytes = 2u << 20;  // merge and rewrite work in chunks of this (at most)

// Bulk load (see "The initial copy as a bulk load" below).
constexpr const char* kBulkDir = "pgseed-bulk";   // scratch directory inside the store
constexpr size_t kBulkRunsPerTable = 16;          // runs (SST writers) per table
constexpr size_t kBulkOpenWriters = 32;           // open SST files in all
constexpr size_t kBulkRunBytes = 256u << 10;      // rows waiting in a run's heap
constexpr size_t kBulkBufferedBytes = 8u << 20;   // ... and in all runs
constexpr uint64_t kBulkIdleRows = 8192;          // a run unused for this many rows may go
constexpr uint64_t kBulkFileBytes = 64u << 20;    // an SST file is closed at this size
constexpr size_t kBulkSortBytes = 8u << 20;       // rows that fit no run: sorted in this much
constexpr rocksdb::CompressionType kBulkCompression = rocksdb::kLZ4Compression;

// Test hooks (rocksdb_store_testing).
size_t g_spill_bytes = kDefaultSpillBytes;
std::string g_crash_point;
int g_crash_countdown = 0;
uint64_t g_spill_count = 0;
uint64_t g_bulk_file_bytes = kBulkFileBytes;
size_t g_bulk_sort_bytes = kBulkSortBytes;
size_t g_bulk_run_bytes = kBulkRunBytes;
uint64_t g_bulk_files_ingested = 0;
uint64_t g_bulk_rows_sorted = 0;

void crash_point(std::string_view name) {
  if (g_crash_point.empty() || g_crash_point != name) return;
  if (--g_crash_countdown == 0) _exit(rocksdb_store_testing::kCrashExitCode);
}
}  // namespace

namespace rocksdb_store_testing {
void set_spill_bytes(size_t bytes) { g_spill_bytes = bytes == 0 ? kDefaultSpillBytes : bytes; }
void set_crash_point(const std::string& point, int nth) {
  g_crash_point = point;
  g_crash_countdown = nth;
}
uint64_t spill_count() { return g_spill_count; }
void set_bulk_bytes(uint64_t file_bytes, size_t sort_bytes, size_t run_bytes) {
  g_bulk_file_bytes = file_bytes == 0 ? kBulkFileBytes : file_bytes;
  g_bulk_sort_bytes = sort_bytes == 0 ? kBulkSortBytes : sort_bytes;
  g_bulk_run_bytes = run_bytes == 0 ? kBulkRunBytes : run_bytes;
}
uint64_t bulk_files_ingested() { return g_bulk_files_ingested; }
uint64_t bulk_rows_sorted() { return g_bulk_rows_sorted; }
}  // namespace rocksdb_store_testing

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kFormatVersion = "1";
constexpr uint32_t kFirstTableId = 1;
constexpr uint32_t kLastTableId = 0xFFFFFFFE;  // so that table_id + 1 is still a prefix
constexpr uint32_t kOverlayTableId = 0xFFFFFFFF;  // the overlay range (never a table)
constexpr char kOverlayPut = 'P';
constexpr char kOverlayDelete = 'D';
constexpr size_t kOverlayPrefixSize = 5;  // FF FF FF FF + sub-range byte

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

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

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
  r.expect_end("store state");
  return s;
}

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

// A transaction's writes as seen by reads inside it (reads-your-writes): the last write of
// each key held in memory, and the ranges deleted (a key written after a range delete is in
// `writes`, or in the spilled overlay, which are consulted first). `bytes` estimates the
// memory `writes` takes.
struct Overlay {
  static constexpr size_t kEntryOverhead = 128;  // map node, two std::string, allocator

  std::map<std::string, std::optional<std::string>, std::less<>> writes;
  std::vector<std::pair<std::string, std::string>> ranges;
  size_t bytes = 0;

  void set(std::string_view k, std::optional<std::string_view> v) {
    auto it = writes.find(k);
    if (it == writes.end()) {
      bytes += k.size() + (v ? v->size() : 0) + kEntryOverhead;
      writes.emplace(std::string(k), v ? std::optional<std::string>(*v) : std::nullopt);
      return;
    }
    bytes -= it->second ? it->second->size() : 0;
    bytes += v ? v->size() : 0;
    if (v)
      it->second = std::string(*v);
    else
      it->second.reset();
  }
  void put(std::string_view k, std::string_view v) { set(k, v); }
  void del(std::string_view k) { set(k, std::nullopt); }
  void del_range(std::string_view b, std::string_view e) {
    auto first = writes.lower_bound(b), last = writes.lower_bound(e);
    for (auto it = first; it != last; ++it)
      bytes -= it->first.size() + (it->second ? it->second->size() : 0) + kEntryOverhead;
    writes.erase(first, last);
    // Keep the list short: a range inside one already deleted adds nothing.
    for (const auto& [rb, re] : ranges)
      if (rb <= b && e <= re) return;
    std::erase_if(ranges, [&](const auto& r) { return b <= r.first && r.second <= e; });
    ranges.emplace_back(b, e);
  }
  bool range_deleted(std::string_view k) const {
    for (const auto& [b, e] : ranges)
      if (k >= b && k < e) return true;
    return false;
  }
  void clear_writes() {
    writes.clear();
    bytes = 0;
  }
  void clear() {
    clear_writes();
    ranges.clear();
  }
};

// Rebuilds an Overlay from a WriteBatch (after bulk inserts skipped indexing).
class OverlayBuilder : public rocksdb::WriteBatch::Handler {
 public:
  explicit OverlayBuilder(Overlay& o) : o_(o) {}
  rocksdb::Status PutCF(uint32_t, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
    o_.put(view(k), view(v));
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteCF(uint32_t, const rocksdb::Slice& k) override {
    o_.del(view(k));
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteRangeCF(uint32_t, const rocksdb::Slice& b,
                                const rocksdb::Slice& e) override {
    o_.del_range(view(b), view(e));
    return rocksdb::Status::OK();
  }

 private:
  Overlay& o_;
};

using TablePtr = std::shared_ptr<const TableEntry>;

// The bulk load's SST writers write through this: their files are not synced when
// finished, because IngestExternalFile syncs each file it takes in (after linking it into
// the store) before it records it in the MANIFEST; a file never ingested is not data.
// This halves the fsyncs of the bulk load (they are on the copy's critical path).
class NoSyncWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  using rocksdb::FSWritableFileOwnerWrapper::FSWritableFileOwnerWrapper;
  rocksdb::IOStatus Sync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&,
                              rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
};

class NoSyncFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit NoSyncFileSystem(const std::shared_ptr<rocksdb::FileSystem>& target)
      : rocksdb::FileSystemWrapper(target) {}
  static const char* kClassName() { return "PgseedBulkNoSyncFileSystem"; }
  const char* Name() const override { return kClassName(); }
  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, &file, dbg);
    if (s.ok()) *result = std::make_unique<NoSyncWritableFile>(std::move(file));
    return s;
  }
};

struct Meta {
  StoreState state;
  std::map<uint32_t, TablePtr> tables;  // by id, which is creation order
  uint32_t next_table_id = kFirstTableId;
  uint64_t next_row_seq = 1;
};

struct RowBuffers {
  std::string scratch;
  Row cells;
};

class RocksDbStore final : public Store {
 public:
  RocksDbStore(std::string path, std::unique_ptr<rocksdb::DB> db)
      : path_(std::move(path)), db_(std::move(db)) {
    load();
    // A bulk load's leftovers (a crash before it ended): never ingested, so not data.
    std::error_code ec;
    fs::remove_all(bulk_dir(), ec);
  }

  ~RocksDbStore() override {
    // An open transaction is rolled back by dropping its batch (and its spilled overlay:
    // should that fail, the next open() clears it); Close() then flushes memtables holding
    // copy rows written without the WAL.
    if (overlay_dirty_ && !broken_) try_clear_overlay();
    if (bulk_) abort_bulk_load();
    if (db_) db_->Close().PermitUncheckedError();
  }

  StoreState state() const override { return committed_.state; }

  std::vector<TableDef> tables() const override {
    std::vector<TableDef> out;
    for (const auto& [id, t] : committed_.tables) out.push_back(t->def);
    return out;
  }

  void begin() override {
    if (in_txn_) throw Error(ErrorCategory::kInternal, "begin() inside a transaction");
    if (broken_)
      throw Error(ErrorCategory::kStore,
                  where() + ": an earlier commit of a large transaction failed half-way; reopen "
                            "the store (opening completes or discards it)");
    // A transaction starts on an empty overlay range (see "Large transactions").
    if (overlay_dirty_) clear_overlay();
    pending_ = committed_;
    in_txn_ = true;
  }

  void commit() override {
    require_txn("commit");
    if (spilled_) return commit_spilled();
    // Tables whose copy point this transaction records are made durable with their rows.
    const bool finished_tables = bulk_ && !bulk_finished_.empty();
    if (finished_tables) ingest_finished_tables();
    write_meta_changes(batch_);
    const bool copy_batch = committed_.state.phase == StoreState::Phase::kCopying &&
                            pending_.state.phase == StoreState::Phase::kCopying &&
                            !finished_tables && !state_dirty_;
    if (batch_.Count() > 0) {
      rocksdb::Status s;
      if (copy_batch) {
        rocksdb::WriteOptions wo;
        wo.disableWAL = true;
        s = db_->Write(wo, &batch_);
        if (s.ok()) unflushed_copy_ = true;
      } else {
        if (unflushed_copy_) flush_copy();
        rocksdb::WriteOptions wo;
        wo.sync = true;
        s = db_->Write(wo, &batch_);
      }
      if (!s.ok()) {
        end_txn();
        fail(s, "commit failed (the transaction was rolled back)");
      }
    }
    committed_ = std::move(pending_);
    end_txn();
  }

  void rollback() override {
    require_txn("rollback");
    if (bulk_) bulk_poisoned_ = true;  // its rows are in the files already
    bulk_finished_.clear();
    const bool spilled = spilled_;
    end_txn();
    if (spilled) try_clear_overlay();
  }

  void write_state(const StoreState& state) override {
    require_txn("write_state");
    if (bulk_ && state.phase != StoreState::Phase::kCopying)
      throw Error(ErrorCategory::kInternal,
                  "write_state() leaving kCopying during a bulk load (finish_bulk_load() does)");
    pending_.state = state;
    state_dirty_ = true;
  }

  void reset() override {
    require_txn("reset");
    require_no_bulk("reset");
    del_range(KeyCodec::table_prefix(kFirstTableId), KeyCodec::table_prefix(kLastTableId + 1));
    // Also definitions a lost copy batch might have left behind.
    std::string b = table_meta_key(0);
    b.resize(b.size() - 4);
    del_range(b, prefix_end(b));
    for (const auto& [id, t] : pending_.tables) dirty_tables_.insert(id);
    pending_.tables.clear();
    pending_.state = StoreState{};
    state_dirty_ = true;
  }

  void create_table(TableDef& def) override {
    require_txn("create_table");
    for (const auto& [id, t] : pending_.tables) {
      if (t->def.schema == def.schema && t->def.name == def.name) {
        drop(id);
        break;
      }
    }
    if (pending_.next_table_id > kLastTableId)
      throw Error(ErrorCategory::kStore, where() + ": no table ids left");
    def.id = pending_.next_table_id++;
    set_table(TableEntry::identity(def));
  }

  void drop_table(const TableDef& def) override {
    require_txn("drop_table");
    require_no_bulk("drop_table");
    entry(def);  // must exist
    drop(def.id);
  }

  void set_sync_state(const TableDef& def) override {
    require_txn("set_sync_state");
    TableEntry t = entry(def);
    t.def.snapshot_lsn = def.snapshot_lsn;
    t.def.relfilenode = def.relfilenode;
    set_table(std::move(t));
    if (bulk_ && !def.awaiting_copy()) bulk_finished_.insert(def.id);
  }

  void alter_table(const TableDef& from, const TableDef& to, std::span<const Datum> fill) override {
    require_txn("alter_table");
    require_no_bulk("alter_table");
    const TableEntry& old = entry(from);
    if (!fill.empty() && fill.size() != to.columns.size())
      throw Error(ErrorCategory::kInternal, "alter_table: fill has " + std::to_string(fill.size()) +
                                                " values for " + std::to_string(to.columns.size()) +
                                                " columns");
    TableDef target = to;
    target.id = old.def.id;
    auto old_index = [&](const std::string& name) -> int {
      for (size_t j = 0; j < old.def.columns.size(); ++j)
        if (old.def.columns[j].name == name) return static_cast<int>(j);
      return -1;
    };
    auto fill_value = [&](size_t i) -> std::optional<std::string> {
      if (i < fill.size() && fill[i].kind == Datum::Kind::kText) return std::string(fill[i].text);
      return std::nullopt;
    };

    if (same_key(old, target)) {
      // Keys stay as they are: only the layout changes, no row is touched.
      TableEntry t;
      t.def = target;
      t.slot_count = old.slot_count;
      for (size_t i = 0; i < target.columns.size(); ++i) {
        int j = old_index(target.columns[i].name);
        if (j >= 0) {
          t.slot.push_back(old.slot[j]);
          t.missing.push_back(old.missing[j]);
        } else {
          t.slot.push_back(t.slot_count++);
          t.missing.push_back(fill_value(i));
        }
      }
      t.finish();
      set_table(std::move(t));
      return;
    }

    // The key changes: rewrite every row under its new key, in the identity layout.
    TableEntry t = TableEntry::identity(target);
    std::vector<int> source(target.columns.size());
    std::vector<std::optional<std::string>> fills(target.columns.size());
    for (size_t i = 0; i < target.columns.size(); ++i) {
      source[i] = old_index(target.columns[i].name);
      if (source[i] < 0) fills[i] = fill_value(i);
    }
    // Rows are read in chunks of about chunk_bytes() (each read a fresh iterator, so none
    // pins memtables while the previous chunk is written). A small table stays in
    // `rows`; a big one is parked chunk by chunk in the scratch range (outside the
    // table's range, so reading the table is not disturbed), then written back.
    std::vector<std::pair<std::string, std::string>> rows;
    size_t rows_bytes = 0;
    bool scratch = false;
    const std::string end = table_end(old.def.id);
    std::string cursor = table_begin(old.def.id);
    RowBuffers buf;
    Row old_row, new_row(target.columns.size());
    for (bool more = true; more;) {
      more = false;
      for_each(cursor, end, [&](std::string_view key, std::string_view value) {
        decode_row(old, value, buf, old_row);
        for (size_t i = 0; i < new_row.size(); ++i) {
          if (source[i] >= 0)
            new_row[i] = old_row[source[i]];
          else
            new_row[i] = fills[i] ? Datum::of(*fills[i]) : Datum::null();
        }
        std::string new_key = t.codec.encode(new_row);
        if (!t.codec.keyed()) {
          // Keep a keyless row's sequence number; a row that had a key gets one.
          std::string_view rest;
          if (!old.codec.keyed()) old.codec.decode(key, &rest);
          if (rest.size() == 8)
            new_key += rest;
          else
            append_be(new_key, pending_.next_row_seq++, 8);
        }
        rows_bytes += new_key.size() + Overlay::kEntryOverhead;
        rows.emplace_back(std::move(new_key), encode_row(t, new_row));
        rows_bytes += rows.back().second.size();
        if (rows_bytes <= chunk_bytes()) return true;
        cursor.assign(key);
        cursor.push_back('\0');  // the key right after this one
        more = true;
        return false;
      });
      if (!more) break;
      // Park the chunk in the scratch range (cleared first: only this rewrite's rows).
      rocksdb::WriteBatch b;
      if (!scratch) b.DeleteRange(slice(scratch_begin()), slice(scratch_end()));
      scratch = true;
      for (const auto& [k, v] : rows) {
        std::string sk = scratch_begin();
        sk += k;
        b.Put(slice(sk), slice(v));
      }
      rows.clear();
      rows_bytes = 0;
      overlay_dirty_ = true;
      write_wal(b, "writing a table rewrite");
    }
    del_range(table_begin(old.def.id), end);
    if (scratch) {
      // Back from the scratch range, in chunks (put() may spill, which writes).
      std::string from = scratch_begin();
      for (bool more = true; more;) {
        std::vector<std::pair<std::string, std::string>> chunk;
        size_t chunk_size = 0;
        more = false;
        {
          rocksdb::ReadOptions ro;
          const std::string upper_key = scratch_end();
          rocksdb::Slice upper = slice(upper_key);
          ro.iterate_upper_bound = &upper;
          ro.fill_cache = false;
          std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
          for (it->Seek(slice(from)); it->Valid(); it->Next()) {
            std::string_view k = view(it->key()), v = view(it->value());
            chunk.emplace_back(std::string(k.substr(kOverlayPrefixSize)), std::string(v));
            chunk_size += k.size() + v.size() + Overlay::kEntryOverhead;
            if (chunk_size > chunk_bytes()) {
              from.assign(k);
              from.push_back('\0');
              more = true;
              break;
            }
          }
          if (!it->status().ok()) fail(it->status(), "reading a table rewrite");
        }
        for (const auto& [k, v] : chunk) put(k, v);
      }
      rocksdb::WriteBatch b;
      b.DeleteRange(slice(scratch_begin()), slice(scratch_end()));
      write_wal(b, "clearing a table rewrite");
    }
    for (const auto& [k, v] : rows) put(k, v);
    set_table(std::move(t));
  }

  void insert_batch(const TableDef& def, const RowBatch& rows) override {
    require_txn("insert_batch");
    const TableEntry& t = entry(def);
    if (bulk_) return bulk_insert(t, rows);
    // Copy batches are not indexed for reads inside the transaction: the copy does not
    // read, and the index would double its memory. A later read rebuilds it.
    const bool index = !copy_txn() || spilled_;
    if (!index) overlay_stale_ = true;
    Row row;
    for (size_t i = 0; i < rows.rows(); ++i) {
      rows.row(i, row);
      check_row(t, row, "insert_batch");
      put(row_key(t, row), encode_row(t, row), index);
    }
    // The initial copy is not one atomic write (the phase stays kCopying until a durable
    // commit ends it, and a crash before that discards the copy), so its rows go to the
    // database as they come instead of piling up in memory until commit().
    if (!index && batch_.GetDataSize() > kCopyFlushBytes) {
      rocksdb::WriteOptions wo;
      wo.disableWAL = true;
      rocksdb::Status s = db_->Write(wo, &batch_);
      if (!s.ok()) fail(s, "writing copied rows");
      unflushed_copy_ = true;
      batch_.Clear();
    }
  }

  void upsert(const TableDef& def, std::span<const Datum> row) override {
    require_txn("upsert");
    require_no_bulk("upsert");
    const TableEntry& t = entry(def);
    check_row(t, row, "upsert");
    if (has_unchanged(row)) return update(def, {}, row);
    put(row_key(t, row), encode_row(t, row));
  }

  void update(const TableDef& def, std::span<const Datum> old_row,
              std::span<const Datum> new_row) override {
    require_txn("update");
    require_no_bulk("update");
    const TableEntry& t = entry(def);
    check_row(t, new_row, "update");
    if (!old_row.empty()) check_row(t, old_row, "update (old row)");
    Row merged(new_row.begin(), new_row.end());
    RowBuffers buf;
    Row stored;
    std::string stored_value;

    if (t.codec.keyed()) {
      std::string old_key = t.codec.encode(old_row.empty() ? new_row : old_row);
      if (has_unchanged(new_row)) {
        std::optional<std::string> v = get(old_key);
        if (!v)
          throw Error(ErrorCategory::kStore,
                      "table " + t.def.qualified() +
                          ": an update keeps unchanged TOAST values of a row the store does "
                          "not have; the replica has diverged from the source, sync it again");
        stored_value = std::move(*v);
        decode_row(t, stored_value, buf, stored);
        merge_unchanged(merged, stored);
      }
      std::string new_key = t.codec.encode(merged);
      if (new_key != old_key) del(old_key);
      put(new_key, encode_row(t, merged));
      return;
    }

    // No key: the old row is the whole row (REPLICA IDENTITY FULL); change one equal row.
    if (old_row.empty())
      throw Error(ErrorCategory::kInternal,
                  "update of " + t.def.qualified() + " (no key) without the old row");
    merge_unchanged(merged, old_row);
    std::optional<std::string> found = find_equal(t, old_row);
    std::string new_key = t.codec.encode(merged);
    if (found) {
      new_key.append(*found, found->size() - 8, 8);  // keep its sequence number
      if (new_key != *found) del(*found);
    } else {
      append_be(new_key, pending_.next_row_seq++, 8);
    }
    put(new_key, encode_row(t, merged));
  }

  void remove(const TableDef& def, std::span<const Datum> old_row) override {
    require_txn("remove");
    require_no_bulk("remove");
    const TableEntry& t = entry(def);
    check_row(t, old_row, "remove");
    if (t.codec.keyed()) {
      del(t.codec.encode(old_row));
      return;
    }
    if (std::optional<std::string> found = find_equal(t, old_row)) del(*found);
  }

  void truncate(const TableDef& def) override {
    require_txn("truncate");
    require_no_bulk("truncate");
    entry(def);
    del_range(table_begin(def.id), table_end(def.id));
  }

  void scan(const TableDef& def, const std::function<void(const Row&)>& fn) const override {
    const TableEntry& t = entry(def);
    RowBuffers buf;
    Row row;
    for_each(table_begin(def.id), table_end(def.id), [&](std::string_view, std::string_view v) {
      decode_row(t, v, buf, row);
      fn(row);
      return true;
    });
  }

  bool lookup(const TableDef& def, std::span<const std::string> key,
              const std::function<void(const Row&)>& fn) const override {
    const TableEntry& t = entry(def);
    if (!t.codec.keyed() || key.size() != t.codec.columns().size())
      return Store::lookup(def, key, fn);  // reports the mismatch
    // A row with only the key columns set is all the key codec reads.
    Row probe(def.columns.size(), Datum::null());
    for (const auto& c : def.columns)
      if (c.key_position > 0) {
        size_t i = size_t(&c - def.columns.data());
        probe[i] = Datum::of(key[size_t(c.key_position - 1)]);
      }
    std::optional<std::string> v = get(t.codec.encode(probe));
    if (!v) return false;
    RowBuffers buf;
    Row row;
    decode_row(t, *v, buf, row);
    fn(row);
    return true;
  }

  uint64_t count(const TableDef& def) const override {
    entry(def);
    uint64_t n = 0;
    for_each(table_begin(def.id), table_end(def.id), [&](std::string_view, std::string_view) {
      ++n;
      return true;
    });
    return n;
  }

  // ---- the initial copy as a bulk load (see "The initial copy as a bulk load") ----

  void begin_bulk_load() override {
    if (in_txn_) throw Error(ErrorCategory::kInternal, "begin_bulk_load() inside a transaction");
    if (bulk_) throw Error(ErrorCategory::kInternal, "begin_bulk_load() during a bulk load");
    if (broken_) return;  // begin() reports it
    if (committed_.state.phase != StoreState::Phase::kCopying) return;  // plain transactions
    bulk_cleanup();  // a crashed run's files
    std::error_code ec;
    fs::create_directories(bulk_dir(), ec);
    if (ec)
      throw Error(ErrorCategory::kStore,
                  where() + ": cannot create the bulk load directory: " + ec.message());
    rocksdb::Status s;
    if (!keep_finished_tables()) {
      // Drop reset()'s range tombstones over the tables (and what they cover), so that the
      // files ingested later overlap nothing and go to the bottom level. (Not when an
      // interrupted copy's tables are kept: that would rewrite them.)
      const std::string b = table_begin(kFirstTableId), e = table_begin(kLastTableId + 1);
      rocksdb::Slice bs = slice(b), es = slice(e);
      rocksdb::CompactRangeOptions co;
      co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
      s = db_->CompactRange(co, &bs, &es);
      if (!s.ok()) fail(s, "preparing the bulk load failed");
    }
    s = db_->SetOptions({{"disable_auto_compactions", "true"}});
    if (!s.ok()) fail(s, "preparing the bulk load failed");
    auto_compactions_off_ = true;
    bulk_options_ = db_->GetOptions();
    if (!bulk_env_)
      bulk_env_ = rocksdb::NewCompositeEnv(
          std::make_shared<NoSyncFileSystem>(rocksdb::FileSystem::Default()));
    bulk_options_.env = bulk_env_.get();
    bulk_options_.compression = kBulkCompression;
    bulk_options_.writable_file_max_buffer_size = 64u << 10;  // per open file
    bulk_ = true;
    crash_point("bulk_begin");
  }

  void finish_bulk_load(const StoreState& final_state) override {
    if (!bulk_) return Store::finish_bulk_load(final_state);
    if (in_txn_) throw Error(ErrorCategory::kInternal, "finish_bulk_load() inside a transaction");
    if (bulk_poisoned_)
      throw Error(ErrorCategory::kInternal,
                  "finish_bulk_load() after a rollback inside the bulk load");
    for (auto& [id, bt] : bulk_tables_)
      for (auto& r : bt.runs) {
        drain(*r);
        if (r->writer) close_file(*r);
      }
    if (!sort_entries_.empty()) write_sorted();
    bulk_tables_.clear();
    std::string().swap(sort_arena_);
    std::vector<SortEntry>().swap(sort_entries_);
    ingest_files();
    // Table definitions (and any other copy batch) are in the memtable only.
    if (unflushed_copy_) flush_copy(/*end_on_failure=*/false);
    crash_point("bulk_flushed");
    bulk_ = false;
    begin();
    write_state(final_state);
    commit();
    abort_bulk_load();  // the cleanup: scratch directory, auto compactions
  }

  void abort_bulk_load() noexcept override {
    bulk_ = false;
    bulk_poisoned_ = false;
    bulk_finished_.clear();
    bulk_tables_.clear();  // open writers abandon their files
    open_files_ = 0;
    bulk_buffered_ = 0;
    bulk_files_.clear();
    std::string().swap(sort_arena_);
    std::vector<SortEntry>().swap(sort_entries_);
    bulk_cleanup();
    if (auto_compactions_off_) {
      if (db_->SetOptions({{"disable_auto_compactions", "false"}}).ok())
        auto_compactions_off_ = false;
    }
  }

 private:
  std::string where() const { return "rocksdb store '" + path_ + "'"; }

  // ---- bulk load: runs of SST files, the sort buffer, ingestion ----

  // A row waiting in a run's heap; `head` holds key bytes 4..19 (after the table id, which
  // all keys of a run share), big-endian, zero-padded: most comparisons stop there.
  struct BulkRow {
    unsigned __int128 head;
    std::string key, value;
    BulkRow(std::string k, std::string v) : head(key_head(k)), key(std::move(k)), value(std::move(v)) {}
  };
  static unsigned __int128 key_head(std::string_view k) {
    unsigned char b[16] = {};
    if (k.size() > 4) std::memcpy(b, k.data() + 4, std::min<size_t>(16, k.size() - 4));
    unsigned __int128 h = 0;
    for (unsigned char c : b) h = (h << 8) | c;
    return h;
  }
  // A run: rows written in increasing key order to its SST file (one after another),
  // through a small min-heap that absorbs local disorder (rows of one stream filled into
  // heap pages out of order): a row waits there until the heap holds kBulkRunBytes, then
  // the smallest is written. Every waiting row is above `last`, the last key written.
  struct BulkRun {
    std::unique_ptr<rocksdb::SstFileWriter> writer;  // null: no file open
    std::string first;      // of the open file
    std::string last;       // last key written ("" before the first)
    std::vector<BulkRow> heap;
    size_t heap_bytes = 0;
    uint64_t used = 0;      // for draining the least recently used run
  };
  struct BulkTable {
    std::vector<std::unique_ptr<BulkRun>> runs;
  };
  struct BulkFile {
    std::string path, smallest, largest;
    uint64_t bytes = 0;
  };
  struct SortEntry {
    size_t offset;
    uint32_t key_size, value_size;
  };

  std::string bulk_dir() const { return path_ + "/" + kBulkDir; }

  void bulk_cleanup() noexcept {
    std::error_code ec;
    fs::remove_all(bulk_dir(), ec);
  }

  void require_no_bulk(const char* op) const {
    if (bulk_)
      throw Error(ErrorCategory::kInternal,
                  std::string(op) + "() during a bulk load (only create_table and insert_batch)");
  }

  void bulk_insert(const TableEntry& t, const RowBatch& rows) {
    BulkTable& bt = bulk_tables_[t.def.id];
    Row row;
    for (size_t i = 0; i < rows.rows(); ++i) {
      rows.row(i, row);
      check_row(t, row, "insert_batch");
      bulk_add(bt, row_key(t, row), encode_row(t, row));
    }
  }

  // The heap's order: a > b by key (memcmp order, a shorter key first on a common prefix).
  static bool heap_after(const BulkRow& a, const BulkRow& b) {
    if (a.head != b.head) return a.head > b.head;
    if (a.key.size() <= 20 && b.key.size() <= 20 && a.key.size() != b.key.size())
      return a.key.size() > b.key.size();
    return a.key > b.key;
  }

  void bulk_add(BulkTable& bt, std::string key, std::string value) {
    // bt.runs is sorted by last key: the row goes to the run whose last key is the
    // greatest one below it.
    auto& runs = bt.runs;
    auto next = std::lower_bound(runs.begin(), runs.end(), key,
                                 [](const auto& r, const std::string& k) { return r->last < k; });
    BulkRun* best = nullptr;
    if (next != runs.begin()) {
      best = std::prev(next)->get();
    } else {
      // No run fits: a new one, in place of one idle for a while when there are enough
      // (the scan moved on: a synchronized scan wrapped around, another part of the
      // heap); else the sort buffer.
      if (runs.size() >= kBulkRunsPerTable) {
        auto idle = std::min_element(runs.begin(), runs.end(),
                                     [](const auto& a, const auto& b) { return a->used < b->used; });
        if ((*idle)->used + kBulkIdleRows > bulk_clock_) return sort_add(key, value);
        drain(**idle);
        if ((*idle)->writer) close_file(**idle);
        runs.erase(idle);
      }
      next = runs.insert(runs.begin(), std::make_unique<BulkRun>());
      best = next->get();
      ++next;
    }
    // A row inside the range of the next run's file (that run jumped over this one's
    // keys): that file is closed, so that the overlap stays as small as it is now.
    if (next != runs.end()) {
      BulkRun& r = **next;
      if (r.writer && r.first < key && key < r.last) close_file(r);
    }
    best->used = ++bulk_clock_;
    const size_t bytes = key.size() + value.size() + sizeof(BulkRow);
    best->heap.emplace_back(std::move(key), std::move(value));
    std::push_heap(best->heap.begin(), best->heap.end(), heap_after);
    best->heap_bytes += bytes;
    bulk_buffered_ += bytes;
    if (best->heap_bytes > g_bulk_run_bytes) {
      // One row out per row in: writing more would move `last` past rows of this stream
      // still to come (the disorder the heap is there to absorb).
      while (best->heap_bytes > g_bulk_run_bytes) write_smallest(*best);
      restore_order(bt, best);
    }
    if (bulk_buffered_ > kBulkBufferedBytes) {
      // Too much waits in all: the least recently used run writes all it holds.
      BulkTable* lru_table = nullptr;
      BulkRun* lru = nullptr;
      for (auto& [id, t] : bulk_tables_)
        for (auto& r : t.runs)
          if (!r->heap.empty() && (!lru || r->used < lru->used)) lru = r.get(), lru_table = &t;
      if (lru) {
        drain(*lru);
        restore_order(*lru_table, lru);
      }
    }
  }

  // Writes the run's smallest waiting row.
  void write_smallest(BulkRun& run) {
    std::pop_heap(run.heap.begin(), run.heap.end(), heap_after);
    BulkRow& row = run.heap.back();
    const size_t bytes = row.key.size() + row.value.size() + sizeof(BulkRow);
    run.heap_bytes -= bytes;
    bulk_buffered_ -= bytes;
    // (An equal key, a duplicate the source cannot have, keeps the first row.)
    if (row.key != run.last || run.last.empty()) {
      if (run.writer && run.writer->FileSize() >= g_bulk_file_bytes) close_file(run);
      if (!run.writer) open_file(run, row.key);
      rocksdb::Status s = run.writer->Put(slice(row.key), slice(row.value));
      if (!s.ok()) fail(s, "writing copied rows to " + bulk_dir());
      run.last = std::move(row.key);
    }
    run.heap.pop_back();
  }

  void drain(BulkRun& run) {
    while (!run.heap.empty()) write_smallest(run);
  }

  // After `run`'s last key grew: moves it forward to keep bt.runs sorted by last key.
  static void restore_order(BulkTable& bt, BulkRun* run) {
    auto& runs = bt.runs;
    size_t i = 0;
    while (i < runs.size() && runs[i].get() != run) ++i;
    for (; i + 1 < runs.size() && runs[i + 1]->last < runs[i]->last; ++i) std::swap(runs[i], runs[i + 1]);
  }

  void open_file(BulkRun& run, const std::string& first_key) {
    if (open_files_ >= kBulkOpenWriters) {
      BulkRun* lru = nullptr;
      for (auto& [id, bt] : bulk_tables_)
        for (auto& r : bt.runs)
          if (r->writer && (!lru || r->used < lru->used)) lru = r.get();
      if (lru) close_file(*lru);
    }
    auto w = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(bulk_options_),
                                                      bulk_options_, nullptr,
                                                      /*invalidate_page_cache=*/false);
    rocksdb::Status s = w->Open(bulk_dir() + "/" + std::to_string(++bulk_file_seq_) + ".sst");
    if (!s.ok()) fail(s, "creating a bulk load file in " + bulk_dir());
    run.writer = std::move(w);
    run.first = first_key;
    ++open_files_;
  }

  void close_file(BulkRun& run) {
    rocksdb::ExternalSstFileInfo info;
    rocksdb::Status s = run.writer->Finish(&info);
    run.writer.reset();
    --open_files_;
    if (!s.ok()) fail(s, "writing a bulk load file in " + bulk_dir());
    bulk_files_.push_back({info.file_path, info.smallest_key, info.largest_key, info.file_size});
    crash_point("bulk_file");
  }

  // Rows that fit no run: kept in one buffer, written sorted as a file when it is full.
  void sort_add(std::string_view key, std::string_view value) {
    ++g_bulk_rows_sorted;
    sort_entries_.push_back({sort_arena_.size(), static_cast<uint32_t>(key.size()),
                             static_cast<uint32_t>(value.size())});
    sort_arena_ += key;
    sort_arena_ += value;
    if (sort_arena_.size() >= g_bulk_sort_bytes) write_sorted();
  }

  void write_sorted() {
    auto key_of = [&](const SortEntry& e) {
      return std::string_view(sort_arena_).substr(e.offset, e.key_size);
    };
    std::stable_sort(sort_entries_.begin(), sort_entries_.end(),
                     [&](const SortEntry& a, const SortEntry& b) { return key_of(a) < key_of(b); });
    BulkRun run;
    for (size_t i = 0; i < sort_entries_.size(); ++i) {
      const SortEntry& e = sort_entries_[i];
      // Of equal keys, the last written wins (as it would in the memtable).
      if (i + 1 < sort_entries_.size() && key_of(sort_entries_[i + 1]) == key_of(e)) continue;
      std::string_view k = key_of(e);
      std::string_view v = std::string_view(sort_arena_).substr(e.offset + e.key_size, e.value_size);
      if (!run.writer) open_file(run, std::string(k));
      rocksdb::Status s = run.writer->Put(slice(k), slice(v));
      if (!s.ok()) fail(s, "writing copied rows to " + bulk_dir());
      run.last.assign(k);
    }
    if (run.writer) close_file(run);
    sort_entries_.clear();
    sort_arena_.clear();
  }

  // An interrupted copy taken up (see "Resuming" above): the tables whose copy point was
  // committed stay; every other table id's range is emptied (a table still being copied
  // may have had files ingested with a finished one, and its definition, written
  // without the WAL, may be lost) and the definitions of unfinished tables go. Returns
  // whether any table was kept.
  bool keep_finished_tables() {
    begin();
    uint32_t next = kFirstTableId, max_id = 0;
    for (const auto& [id, t] : committed_.tables) {
      if (t->def.awaiting_copy()) {
        pending_.tables.erase(id);
        dirty_tables_.insert(id);
        continue;
      }
      if (id > next) del_range(table_begin(next), table_begin(id));
      next = id + 1;
      max_id = std::max(max_id, id);
    }
    bool kept = max_id != 0;
    if (kept) {
      del_range(table_begin(next), table_begin(kLastTableId + 1));
      // Ids are never reused: the last one may have been written without the WAL.
      pending_.next_table_id = std::max(pending_.next_table_id, max_id + 1);
    }
    commit();
    return kept;
  }

  // The files of the tables in bulk_finished_ are finished (their runs drained and
  // closed; the sort buffer, which may hold their rows, written) and ingested; commit()
  // then writes the transaction through the WAL, synced. Other tables' files wait for a
  // later round (fewer rounds: more of them reach the bottom level).
  void ingest_finished_tables() {
    for (uint32_t id : bulk_finished_) {
      auto it = bulk_tables_.find(id);
      if (it == bulk_tables_.end()) continue;
      for (auto& r : it->second.runs) {
        drain(*r);
        if (r->writer) close_file(*r);
      }
      bulk_tables_.erase(it);
    }
    const std::string first = table_begin(*bulk_finished_.begin());
    const std::string end = table_end(*bulk_finished_.rbegin());
    const auto holds_finished = [&](std::string_view smallest, std::string_view largest) {
      if (largest < first || smallest >= end) return false;
      for (uint32_t id : bulk_finished_)
        if (!(largest < table_begin(id) || smallest >= table_end(id))) return true;
      return false;
    };
    for (const SortEntry& e : sort_entries_) {
      std::string_view k = std::string_view(sort_arena_).substr(e.offset, e.key_size);
      if (holds_finished(k, k)) {
        write_sorted();
        break;
      }
    }
    std::vector<BulkFile> now, later;
    for (auto& f : bulk_files_)
      (holds_finished(f.smallest, f.largest) ? now : later).push_back(std::move(f));
    bulk_files_ = std::move(now);
    ingest_files();
    bulk_files_ = std::move(later);
    bulk_finished_.clear();
    crash_point("bulk_table_ingested");
  }

  // Ingests bulk_files_ in rounds of disjoint files, the heaviest set first (weighted
  // interval scheduling): those go to the bottom level, the rest above them.
  void ingest_files() {
    std::vector<BulkFile> left = std::move(bulk_files_);
    bulk_files_.clear();
    while (!left.empty()) {
      std::sort(left.begin(), left.end(),
                [](const BulkFile& a, const BulkFile& b) { return a.largest < b.largest; });
      const size_t n = left.size();
      // best[i]: the heaviest disjoint set among the first i files; before[i]: how many
      // files end below file i's start.
      std::vector<uint64_t> best(n + 1, 0);
      std::vector<size_t> before(n);
      for (size_t i = 0; i < n; ++i) {
        auto it = std::lower_bound(
            left.begin(), left.begin() + static_cast<std::ptrdiff_t>(i), left[i].smallest,
            [](const BulkFile& f, const std::string& k) { return f.largest < k; });
        before[i] = static_cast<size_t>(it - left.begin());
        best[i + 1] = std::max(best[i], left[i].bytes + 1 + best[before[i]]);
      }
      std::vector<bool> take(n, false);
      for (size_t i = n; i > 0;) {
        if (best[i] == best[i - 1]) {
          --i;
        } else {
          take[i - 1] = true;
          i = before[i - 1];
        }
      }
      std::vector<std::string> paths;
      std::vector<BulkFile> rest;
      for (size_t i = 0; i < n; ++i) {
        if (take[i])
          paths.push_back(left[i].path);
        else
          rest.push_back(std::move(left[i]));
      }
      rocksdb::IngestExternalFileOptions io;
      io.move_files = true;  // hard links: the store and the scratch directory share a disk
      io.write_global_seqno = false;
      rocksdb::Status s = db_->IngestExternalFile(paths, io);
      if (!s.ok()) fail(s, "ingesting the initial copy failed");
      g_bulk_files_ingested += paths.size();

      crash_point("bulk_ingest");
      left = std::move(rest);
    }
  }

  [[noreturn]] void fail(const rocksdb::Status& s, const std::string& what) const {
    throw Error(ErrorCategory::kStore, where() + ": " + what + ": " + one_line(s.ToString()));
  }

  void require_txn(const char* op) const {
    if (!in_txn_)
      throw Error(ErrorCategory::kInternal, std::string(op) + "() outside a transaction");
  }

  void end_txn() {
    in_txn_ = false;
    pending_ = Meta{};
    batch_.Clear();
    overlay_.clear();
    overlay_stale_ = false;
    spilled_ = false;
    state_dirty_ = false;
    dirty_tables_.clear();
  }

  const Meta& current() const { return in_txn_ ? pending_ : committed_; }

  // The state as committed and as this transaction leaves it are both kCopying: its rows go
  // to the database in copy batches (see the durability argument at the top).
  size_t chunk_bytes() const { return std::min(spill_bytes_, kChunkBytes); }

  bool copy_txn() const {
    return committed_.state.phase == StoreState::Phase::kCopying &&
           pending_.state.phase == StoreState::Phase::kCopying;
  }

  const TableEntry& entry(const TableDef& def) const {
    const Meta& m = current();
    auto it = m.tables.find(def.id);
    if (it == m.tables.end())
      throw Error(ErrorCategory::kInternal, "table " + def.qualified() + " (id " +
                                                std::to_string(def.id) + ") is not in the store");
    return *it->second;
  }

  static std::string table_begin(uint32_t id) { return KeyCodec::table_prefix(id); }
  static std::string table_end(uint32_t id) { return KeyCodec::table_prefix(id + 1); }

  static void check_row(const TableEntry& t, std::span<const Datum> row, const char* op) {
    if (row.size() != t.def.columns.size())
      throw Error(ErrorCategory::kInternal, std::string(op) + " on " + t.def.qualified() +
                                                ": row has " + std::to_string(row.size()) +
                                                " values for " +
                                                std::to_string(t.def.columns.size()) + " columns");
  }

  static bool has_unchanged(std::span<const Datum> row) {
    return std::any_of(row.begin(), row.end(),
                       [](const Datum& d) { return d.kind == Datum::Kind::kUnchanged; });
  }

  static void merge_unchanged(Row& merged, std::span<const Datum> from) {
    for (size_t i = 0; i < merged.size(); ++i)
      if (merged[i].kind == Datum::Kind::kUnchanged) merged[i] = from[i];
  }

  // Key of a new row: by key, or (no key) all columns plus a fresh sequence number.
  std::string row_key(const TableEntry& t, std::span<const Datum> row) {
    std::string key = t.codec.encode(row);
    if (!t.codec.keyed()) append_be(key, pending_.next_row_seq++, 8);
    return key;
  }

  static std::string encode_row(const TableEntry& t, std::span<const Datum> row) {
    std::string out;
    size_t text = 0;  // the encoding is the texts plus a few bytes per cell: one allocation
    for (const auto& d : row) text += d.text.size();
    out.reserve(text + 5 * size_t(t.slot_count) + 8);
    RowCodec::append_count(out, t.slot_count);
    for (uint32_t s = 0; s < t.slot_count; ++s) {
      int c = t.column_of_slot[s];
      if (c < 0)
        RowCodec::append_null(out);
      else
        RowCodec::append_cell(out, t.def.columns[c], row[c]);
    }
    return out;
  }

  static void decode_row(const TableEntry& t, std::string_view value, RowBuffers& buf, Row& out) {
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

  // Same key columns (names, order, encodings) on both sides, and both keyed: rows keep
  // their keys.
  static bool same_key(const TableEntry& old, const TableDef& to) {
    KeyCodec codec(to);
    if (!old.codec.keyed() || !codec.keyed() || codec.encodings() != old.codec.encodings())
      return false;
    for (size_t k = 0; k < codec.columns().size(); ++k)
      if (to.columns[codec.columns()[k]].name != old.def.columns[old.codec.columns()[k]].name)
        return false;
    return true;
  }

  // The key of one stored row equal to `row` in a keyless table, if any.
  std::optional<std::string> find_equal(const TableEntry& t, std::span<const Datum> row) const {
    std::string prefix = t.codec.encode(row);
    std::optional<std::string> found;
    for_each(prefix, prefix_end(prefix), [&](std::string_view key, std::string_view) {
      // The encoding is prefix-free, so any key here is this row plus a sequence number.
      if (key.size() == prefix.size() + 8) {
        found = std::string(key);
        return false;
      }
      return true;
    });
    return found;
  }

  void set_table(TableEntry t) {
    uint32_t id = t.def.id;
    pending_.tables[id] = std::make_shared<const TableEntry>(std::move(t));
    dirty_tables_.insert(id);
  }

  void drop(uint32_t id) {
    del_range(table_begin(id), table_end(id));
    pending_.tables.erase(id);
    dirty_tables_.insert(id);
  }

  void write_meta_changes(rocksdb::WriteBatch& batch) {
    if (state_dirty_) batch.Put(slice(meta_key("state")), slice(encode_state(pending_.state)));
    for (uint32_t id : dirty_tables_) {
      auto it = pending_.tables.find(id);
      if (it != pending_.tables.end())
        batch.Put(slice(table_meta_key(id)), slice(encode_table(*it->second)));
      else
        batch.Delete(slice(table_meta_key(id)));
    }
    if (pending_.next_table_id != committed_.next_table_id) {
      std::string v;
      append_be(v, pending_.next_table_id, 4);
      batch.Put(slice(meta_key("next_table_id")), slice(v));
    }
    if (pending_.next_row_seq != committed_.next_row_seq) {
      std::string v;
      append_be(v, pending_.next_row_seq, 8);
      batch.Put(slice(meta_key("next_row_seq")), slice(v));
    }
  }

  // With `end_on_failure`, a failure rolls the transaction back (commit()); otherwise it
  // stays open for the caller to roll back.
  void flush_copy(bool end_on_failure = true) {
    rocksdb::FlushOptions fo;
    fo.wait = true;
    fo.allow_write_stall = true;
    rocksdb::Status s = db_->Flush(fo);
    if (!s.ok()) {
      if (end_on_failure) {
        end_txn();
        fail(s, "flushing the initial copy failed (the transaction was rolled back)");
      }
      fail(s, "flushing the initial copy failed");
    }
    unflushed_copy_ = false;
  }

  // A write through the WAL, synced or not. Throws Error(kStore).
  void write_wal(rocksdb::WriteBatch& b, const char* what, bool sync = false) const {
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    rocksdb::Status s = db_->Write(wo, &b);
    if (!s.ok()) fail(s, std::string(what) + " failed");
  }

  // ---- writes: into the batch, and into the overlay for reads inside the transaction ----
  // Once the transaction has spilled, the batch is no longer kept: the overlay map (plus
  // the spilled overlay on disk and the list of deleted ranges) is the transaction.

  void put(std::string_view k, std::string_view v, bool index = true) {
    if (!spilled_) batch_.Put(slice(k), slice(v));
    if (index && !overlay_stale_) overlay_.put(k, v);
    maybe_spill();
  }
  void del(std::string_view k) {
    if (!spilled_) batch_.Delete(slice(k));
    if (!overlay_stale_) overlay_.del(k);
    maybe_spill();
  }
  void del_range(std::string_view b, std::string_view e) {
    if (!spilled_) {
      batch_.DeleteRange(slice(b), slice(e));
    } else {
      // Spilled entries in the range are older than this delete: they go now, so that
      // every overlay entry is newer than the range deletes covering it.
      rocksdb::WriteBatch d;
      d.DeleteRange(slice(overlay_key(b)), slice(overlay_key(e)));
      write_wal(d, "writing the transaction's overlay");
    }
    if (!overlay_stale_) overlay_.del_range(b, e);
  }

  void maybe_spill() {
    if (copy_txn() && !spilled_) return;  // copy rows go to the database in copy batches
    size_t in_memory = overlay_.bytes + (spilled_ ? 0 : batch_.GetDataSize());
    if (in_memory > spill_bytes_) spill();
  }

  // Moves the writes held in memory to the overlay range (WAL, no sync: durable with the
  // synced commit record, and discarded after a crash before it). On failure the
  // transaction stays open, for the caller to roll back.
  void spill() {
    if (overlay_stale_) sync_overlay();
    if (unflushed_copy_) flush_copy(/*end_on_failure=*/false);  // see "Large transactions"
    spilled_ = true;  // from here on, rollback() clears the overlay range
    overlay_dirty_ = true;
    rocksdb::WriteBatch b;
    for (const auto& [k, v] : overlay_.writes) {
      b.Put(slice(overlay_key(k)), slice(overlay_value(v)));
      if (b.GetDataSize() > (1u << 20)) {
        write_wal(b, "spilling the transaction");
        b.Clear();
      }
    }
    write_wal(b, "spilling the transaction");
    overlay_.clear_writes();
    batch_.Clear();
    ++g_spill_count;
    crash_point("spill");
  }

  // commit() of a spilled transaction: the commit record, then the merge.
  void commit_spilled() {
    if (unflushed_copy_) flush_copy();
    rocksdb::WriteBatch record;
    // Range deletes first: the metadata and the overlay entries are newer.
    for (const auto& [b, e] : overlay_.ranges) record.DeleteRange(slice(b), slice(e));
    write_meta_changes(record);
    for (const auto& [k, v] : overlay_.writes)
      record.Put(slice(overlay_key(k)), slice(overlay_value(v)));
    record.Put(slice(meta_key("merge_pending")), "1");
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rocksdb::Status s = db_->Write(wo, &record);
    if (!s.ok()) {
      // The record may or may not have reached the disk: only merge_pending, read by the
      // next open(), tells. Until then the overlay must stay, and the store takes no
      // more transactions.
      end_txn();
      broken_ = true;
      fail(s, "commit failed (reopen the store: it then holds the transaction entirely or not "
              "at all)");
    }
    crash_point("commit_record");
    committed_ = std::move(pending_);
    end_txn();  // frees the transaction's memory before the merge
    record.Clear();
    try {
      merge_overlay();
    } catch (const Error& e) {
      broken_ = true;
      throw Error(ErrorCategory::kStore,
                  std::string(e.what()) +
                      " (the transaction is committed; reopening the store completes the merge)");
    }
  }

  // Copies the overlay into the rows, then deletes it and merge_pending in one synced
  // write. Idempotent: a crash anywhere in it is repaired by running it again.
  void merge_overlay() {
    const std::string upper_key = overlay_end();
    std::string from = overlay_begin();
    rocksdb::WriteBatch b;
    for (bool more = true; more;) {
      more = false;
      {
        // A fresh iterator per chunk, so that none pins memtables for long; read once, so
        // not through the block cache.
        rocksdb::ReadOptions ro;
        rocksdb::Slice upper = slice(upper_key);
        ro.iterate_upper_bound = &upper;
        ro.fill_cache = false;
        std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
        for (it->Seek(slice(from)); it->Valid(); it->Next()) {
          std::string_view k = view(it->key()), v = view(it->value());
          rocksdb::Slice key = slice(k.substr(kOverlayPrefixSize));
          if (!v.empty() && v[0] == kOverlayPut)
            b.Put(key, slice(v.substr(1)));
          else if (v.size() == 1 && v[0] == kOverlayDelete)
            b.Delete(key);
          else
            throw Error(ErrorCategory::kStore, where() + " is corrupt: bad overlay entry");
          if (b.GetDataSize() > chunk_bytes()) {
            from.assign(k);
            from.push_back('\0');
            more = true;
            break;
          }
        }
        if (!it->status().ok()) fail(it->status(), "merging a committed transaction");
      }
      if (more) {
        write_wal(b, "merging a committed transaction");
        b.Clear();
        crash_point("merge");
      }
    }
    b.DeleteRange(slice(overlay_all_begin()), slice(overlay_all_end()));
    b.Delete(slice(meta_key("merge_pending")));
    write_wal(b, "merging a committed transaction", /*sync=*/true);
    overlay_dirty_ = false;
  }

  // Deletes everything in the overlay range (an uncommitted transaction's spill, a
  // rewrite's scratch). Throws Error(kStore); overlay_dirty_ says whether it is still to do.
  void clear_overlay() {
    overlay_dirty_ = true;
    rocksdb::WriteBatch b;
    b.DeleteRange(slice(overlay_all_begin()), slice(overlay_all_end()));
    write_wal(b, "clearing a rolled back transaction");
    overlay_dirty_ = false;
  }
  void try_clear_overlay() noexcept {
    try {
      clear_overlay();
    } catch (...) {
      // Left to the next begin() or open().
    }
  }

  void sync_overlay() const {
    if (!overlay_stale_) return;
    overlay_.clear();
    OverlayBuilder builder(overlay_);
    rocksdb::Status s = batch_.Iterate(&builder);
    if (!s.ok()) fail(s, "indexing the transaction failed");
    overlay_stale_ = false;
  }

  // ---- reads: the DB, under the transaction's own writes when inside one ----

  // A value of the overlay range: the write it records (nullopt: a delete).
  std::optional<std::string_view> overlay_entry(std::string_view v) const {
    if (!v.empty() && v[0] == kOverlayPut) return v.substr(1);
    if (v.size() == 1 && v[0] == kOverlayDelete) return std::nullopt;
    throw Error(ErrorCategory::kStore, where() + " is corrupt: bad overlay entry");
  }

  // Inside a transaction: its writes in memory, then its spilled writes, then (unless it
  // deleted the key's range) the database.
  std::optional<std::string> get(std::string_view key) const {
    std::string v;
    if (in_txn_) {
      sync_overlay();
      auto it = overlay_.writes.find(key);
      if (it != overlay_.writes.end()) return it->second;
      if (spilled_) {
        rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), slice(overlay_key(key)), &v);
        if (s.ok()) {
          std::optional<std::string_view> e = overlay_entry(v);
          return e ? std::optional<std::string>(*e) : std::nullopt;
        }
        if (!s.IsNotFound()) fail(s, "read failed");
      }
      if (overlay_.range_deleted(key)) return std::nullopt;
    }
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), slice(key), &v);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) fail(s, "read failed");
    return v;
  }

  // Calls fn(key, value) for every key in [begin, end) in order until it returns false.
  // fn must not write to the store. Inside a transaction it merges three ordered sources,
  // the first one holding a key winning: the writes in memory, the spilled writes, the
  // database (less the ranges the transaction deleted).
  void for_each(std::string_view begin, std::string_view end,
                const std::function<bool(std::string_view, std::string_view)>& fn) const {
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper = slice(end);
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    it->Seek(slice(begin));
    if (!in_txn_) {
      for (; it->Valid(); it->Next())
        if (!fn(view(it->key()), view(it->value()))) break;
      if (!it->status().ok()) fail(it->status(), "read failed");
      return;
    }
    sync_overlay();
    auto mem = overlay_.writes.lower_bound(begin);
    auto mem_end = overlay_.writes.lower_bound(end);
    std::unique_ptr<rocksdb::Iterator> ov;
    std::string ov_upper_key;
    rocksdb::Slice ov_upper;
    rocksdb::ReadOptions ov_ro;
    if (spilled_) {
      ov_upper_key = overlay_key(end);
      ov_upper = slice(ov_upper_key);
      ov_ro.iterate_upper_bound = &ov_upper;
      ov.reset(db_->NewIterator(ov_ro));
      ov->Seek(slice(overlay_key(begin)));
    }
    for (;;) {
      const bool db_valid = it->Valid();
      const bool ov_valid = ov && ov->Valid();
      const bool mem_valid = mem != mem_end;
      if (!db_valid && !ov_valid && !mem_valid) break;
      std::string_view db_key = db_valid ? view(it->key()) : std::string_view();
      std::string_view ov_key =
          ov_valid ? view(ov->key()).substr(kOverlayPrefixSize) : std::string_view();
      std::string_view mem_key = mem_valid ? std::string_view(mem->first) : std::string_view();
      std::string_view least;
      bool have = false;
      for (auto [valid, k] : {std::pair{db_valid, db_key}, std::pair{ov_valid, ov_key},
                              std::pair{mem_valid, mem_key}})
        if (valid && (!have || k < least)) least = k, have = true;
      const bool at_db = db_valid && db_key == least;
      const bool at_ov = ov_valid && ov_key == least;
      const bool at_mem = mem_valid && mem_key == least;
      bool go_on = true;
      if (at_mem) {
        if (mem->second) go_on = fn(mem->first, *mem->second);
      } else if (at_ov) {
        std::optional<std::string_view> e = overlay_entry(view(ov->value()));
        if (e) go_on = fn(least, *e);
      } else if (!overlay_.range_deleted(least)) {
        go_on = fn(least, view(it->value()));
      }
      if (!go_on) break;
      if (at_db) it->Next();
      if (at_ov) ov->Next();
      if (at_mem) ++mem;
    }
    if (!it->status().ok()) fail(it->status(), "read failed");
    if (ov && !ov->status().ok()) fail(ov->status(), "read failed");
  }

  // ---- opening ----

  void load() {
    std::optional<std::string> version = get(meta_key("format_version"));
    if (!version) {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
      it->SeekToFirst();
      if (!it->status().ok()) fail(it->status(), "read failed");
      if (it->Valid())
        throw Error(ErrorCategory::kStore,
                    where() +
                        " is a RocksDB database but not a pgseed store (it has data "
                        "and no pgseed format-version key)");
      rocksdb::WriteBatch b;
      b.Put(slice(meta_key("format_version")), slice(kFormatVersion));
      b.Put(slice(meta_key("state")), slice(encode_state(StoreState{})));
      rocksdb::WriteOptions wo;
      wo.sync = true;
      rocksdb::Status s = db_->Write(wo, &b);
      if (!s.ok()) fail(s, "initialising the store failed");
      return;
    }
    if (*version != kFormatVersion)
      throw Error(ErrorCategory::kStore, where() + " has pgseed store format version '" +
                                             one_line(*version) + "'; this pgseed reads version " +
                                             std::string(kFormatVersion));
    // A large transaction committed before a crash is merged now; anything else in the
    // overlay range is an uncommitted transaction's (see "Large transactions").
    if (get(meta_key("merge_pending"))) {
      merge_overlay();
    } else {
      rocksdb::ReadOptions ro;
      const std::string upper_key = overlay_all_end();
      rocksdb::Slice upper = slice(upper_key);
      ro.iterate_upper_bound = &upper;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
      it->Seek(slice(overlay_all_begin()));
      if (!it->status().ok()) fail(it->status(), "read failed");
      const bool leftovers = it->Valid();
      it.reset();
      if (leftovers) clear_overlay();
    }
    try {
      std::optional<std::string> state = get(meta_key("state"));
      if (!state) throw Error(ErrorCategory::kDecode, "no state key");
      committed_.state = decode_state(*state);
      if (auto v = get(meta_key("next_table_id"))) {
        if (v->size() != 4) throw Error(ErrorCategory::kDecode, "bad next_table_id");
        committed_.next_table_id = static_cast<uint32_t>(read_be(*v));
      }
      if (auto v = get(meta_key("next_row_seq"))) {
        if (v->size() != 8) throw Error(ErrorCategory::kDecode, "bad next_row_seq");
        committed_.next_row_seq = read_be(*v);
      }
      std::string b = table_meta_key(0);
      b.resize(b.size() - 4);
      for_each(b, prefix_end(b), [&](std::string_view key, std::string_view value) {
        if (key.size() != b.size() + 4) throw Error(ErrorCategory::kDecode, "bad table key");
        auto id = static_cast<uint32_t>(read_be(key.substr(b.size())));
        committed_.tables[id] = std::make_shared<const TableEntry>(decode_table(id, value));
        return true;
      });
    } catch (const Error& e) {
      if (e.category() != ErrorCategory::kDecode) throw;
      throw Error(ErrorCategory::kStore, where() + " is corrupt: bad metadata: " + e.what());
    }
  }

  std::string path_;
  std::unique_ptr<rocksdb::DB> db_;
  Meta committed_;

  bool in_txn_ = false;
  Meta pending_;
  bool state_dirty_ = false;
  std::set<uint32_t> dirty_tables_;  // definitions to write (or delete) at commit
  rocksdb::WriteBatch batch_;
  mutable Overlay overlay_;
  mutable bool overlay_stale_ = false;  // batch_ holds writes overlay_ does not
  bool spilled_ = false;                // this transaction has writes in the overlay range
  bool unflushed_copy_ = false;         // copy batches written without WAL since the last flush

  size_t spill_bytes_ = g_spill_bytes;  // memory a transaction may hold before it spills
  bool overlay_dirty_ = false;  // the overlay range may hold something: cleared by begin()
  bool broken_ = false;         // a large commit failed half-way: reopen to finish it

  // The bulk load (begin_bulk_load() to finish_bulk_load() or abort_bulk_load()).
  bool bulk_ = false;
  bool bulk_poisoned_ = false;         // a transaction was rolled back during it
  bool auto_compactions_off_ = false;  // turned off by begin_bulk_load()
  rocksdb::Options bulk_options_;      // for the SST writers
  std::unique_ptr<rocksdb::Env> bulk_env_;  // theirs (NoSyncFileSystem); outlives them
  std::map<uint32_t, BulkTable> bulk_tables_;
  std::set<uint32_t> bulk_finished_;   // tables whose copy point this transaction records
  size_t open_files_ = 0;
  size_t bulk_buffered_ = 0;           // bytes waiting in the runs' heaps
  uint64_t bulk_clock_ = 0;
  uint64_t bulk_file_seq_ = 0;
  std::vector<BulkFile> bulk_files_;   // finished, not ingested yet
  std::string sort_arena_;             // the sort buffer: keys and values
  std::vector<SortEntry> sort_entries_;
};

std::string open_error(const std::string& where, const rocksdb::Status& s) {
  std::string msg = one_line(s.ToString());
  std::string lower = msg;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (s.IsIOError() && lower.find("lock") != std::string::npos)
    return where + " is in use: another process (or another open store) holds its LOCK: " + msg;
  if (s.IsCorruption()) return where + " is corrupt: " + msg;
  return where + " cannot be opened: " + msg;
}

}  // namespace

std::unique_ptr<Store> open_rocksdb_store(const std::string& path, bool must_exist) {
  const std::string where = "rocksdb store '" + path + "'";
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) {
    if (must_exist) throw Error(ErrorCategory::kStore, where + " does not exist");
  } else if (ec) {
    throw Error(ErrorCategory::kStore, where + " cannot be read: " + ec.message());
  } else if (!fs::is_directory(st)) {
    throw Error(ErrorCategory::kStore, where + " is not a directory (a RocksDB store is one)");
  } else if (!fs::exists(fs::path(path) / "CURRENT", ec)) {
    // Empty, or only what RocksDB writes before CURRENT while it creates a database (a
    // run killed at that moment, kill -9): nothing of a store is in it yet, and DB::Open
    // (which takes RocksDB's LOCK first) creates the database over it.
    bool only_creation_files = true;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      std::string n = e.path().filename().string();
      bool creation_file = n == "LOCK" || n == "IDENTITY" || n == "LOG" || n.rfind("LOG.old", 0) == 0 ||
                           n.rfind("MANIFEST-", 0) == 0 || n.rfind("OPTIONS-", 0) == 0 ||
                           (n.size() > 6 && n.compare(n.size() - 6, 6, ".dbtmp") == 0);
      if (!creation_file) only_creation_files = false;
    }
    if (ec) throw Error(ErrorCategory::kStore, where + " cannot be read: " + ec.message());
    if (!only_creation_files)
      throw Error(ErrorCategory::kStore,
                  where +
                      " is not a pgseed store: the directory is not empty and holds no "
                      "RocksDB database");
    if (must_exist) throw Error(ErrorCategory::kStore, where + " does not exist (empty directory)");
  }

  rocksdb::Options options;
  options.create_if_missing = !must_exist;
  options.keep_log_file_num = 5;
  // Memory stays bounded (DESIGN: well under 100 MB whatever the table size): two 16 MB
  // memtables and a small block cache; LZ4 keeps the files small at little CPU cost.
  options.write_buffer_size = 16u << 20;
  options.max_write_buffer_number = 2;
  options.max_background_jobs = 2;
  options.compression = rocksdb::kLZ4Compression;
  {
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rocksdb::NewLRUCache(8u << 20);
    options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) throw Error(ErrorCategory::kStore, open_error(where, s));
  return std::make_unique<RocksDbStore>(path, std::unique_ptr<rocksdb::DB>(raw));
}

}  // namespace pgseed
