// RocksDbStore: opening a store directory, transactions, tables and schema changes (see
// rocksdb/rocksdb_store_impl.h for the design and the other parts).
#include "store/rocksdb/rocksdb_store_impl.h"

#include <rocksdb/cache.h>
#include <rocksdb/iterator.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>

#include <cctype>
#include <filesystem>
#include <system_error>

#include "common/bytes.h"
#include "pgseed/error.h"
#include "store/key_codec.h"
#include "store/rocksdb_store.h"

namespace pgseed::rocks {

RocksDbStore::RocksDbStore(std::string path, std::unique_ptr<rocksdb::DB> db) : path_(std::move(path)), db_(std::move(db)) {
  load();
  // A bulk load's leftovers (a crash before it ended): never ingested, so not data.
  std::error_code ec;
  fs::remove_all(bulk_dir(), ec);
}

RocksDbStore::~RocksDbStore() {
  // An open transaction is rolled back by dropping its batch (and its spilled overlay:
  // should that fail, the next open() clears it); Close() then flushes memtables holding
  // copy rows written without the WAL.
  read_it_.it.reset();  // before the database it reads
  if (overlay_dirty_ && !broken_) try_clear_overlay();
  if (bulk_) abort_bulk_load();
  if (db_) db_->Close().PermitUncheckedError();
}

StoreState RocksDbStore::state() const { return committed_.state; }

std::vector<TableDef> RocksDbStore::tables() const {
  std::vector<TableDef> out;
  for (const auto& [id, t] : committed_.tables) out.push_back(t->def);
  return out;
}

void RocksDbStore::begin() {
  if (in_txn_) throw Error(ErrorCategory::kInternal, "begin() inside a transaction");
  if (broken_)
    throw Error(ErrorCategory::kStore,
                where() + ": an earlier commit of a large transaction failed half-way; reopen "
                          "the store (opening completes or discards it)");
  // A transaction starts on an empty overlay range (see "Large transactions").
  if (overlay_dirty_) clear_overlay();
  pending_ = committed_;
  in_txn_ = true;
  // The map for reads inside the transaction is built at its first read (sync_overlay) and
  // kept up from then on: most transactions of a stream never read (inserts, updates of
  // keyed rows with every value, deletes by key), and then hold their writes once.
  overlay_stale_ = true;
}

void RocksDbStore::commit() {
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

void RocksDbStore::rollback() {
  require_txn("rollback");
  if (bulk_) bulk_poisoned_ = true;  // its rows are in the files already
  bulk_finished_.clear();
  const bool spilled = spilled_;
  end_txn();
  if (spilled) try_clear_overlay();
}

void RocksDbStore::write_state(const StoreState& state) {
  require_txn("write_state");
  if (bulk_ && state.phase != StoreState::Phase::kCopying)
    throw Error(ErrorCategory::kInternal,
                "write_state() leaving kCopying during a bulk load (finish_bulk_load() does)");
  pending_.state = state;
  state_dirty_ = true;
}

void RocksDbStore::reset() {
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

void RocksDbStore::create_table(TableDef& def) {
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

void RocksDbStore::drop_table(const TableDef& def) {
  require_txn("drop_table");
  require_no_bulk("drop_table");
  entry(def);  // must exist
  drop(def.id);
}

void RocksDbStore::set_sync_state(const TableDef& def) {
  require_txn("set_sync_state");
  TableEntry t = entry(def);
  t.def.snapshot_lsn = def.snapshot_lsn;
  t.def.relfilenode = def.relfilenode;
  set_table(std::move(t));
  if (bulk_ && !def.awaiting_copy()) bulk_finished_.insert(def.id);
}

void RocksDbStore::alter_table(const TableDef& from, const TableDef& to, std::span<const Datum> fill) {
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

[[noreturn]] void RocksDbStore::fail(const rocksdb::Status& s, const std::string& what) const {
  throw Error(ErrorCategory::kStore, where() + ": " + what + ": " + one_line(s.ToString()));
}

void RocksDbStore::require_txn(const char* op) const {
  if (!in_txn_)
    throw Error(ErrorCategory::kInternal, std::string(op) + "() outside a transaction");
}

void RocksDbStore::end_txn() {
  in_txn_ = false;
  read_it_.it.reset();  // it pins memtables and files: not kept between transactions
  pending_ = Meta{};
  batch_.Clear();
  overlay_.clear();
  overlay_stale_ = false;
  spilled_ = false;
  batch_has_range_ = false;
  state_dirty_ = false;
  dirty_tables_.clear();
}

const Meta& RocksDbStore::current() const { return in_txn_ ? pending_ : committed_; }

size_t RocksDbStore::chunk_bytes() const { return std::min(spill_bytes_, kChunkBytes); }

bool RocksDbStore::copy_txn() const {
  return committed_.state.phase == StoreState::Phase::kCopying &&
         pending_.state.phase == StoreState::Phase::kCopying;
}

const TableEntry& RocksDbStore::entry(const TableDef& def) const { return *entry_ptr(def); }

const TablePtr& RocksDbStore::entry_ptr(const TableDef& def) const {
  const Meta& m = current();
  auto it = m.tables.find(def.id);
  if (it == m.tables.end())
    throw Error(ErrorCategory::kInternal, "table " + def.qualified() + " (id " +
                                              std::to_string(def.id) + ") is not in the store");
  return it->second;
}

std::string RocksDbStore::table_begin(uint32_t id) { return KeyCodec::table_prefix(id); }

std::string RocksDbStore::table_end(uint32_t id) { return KeyCodec::table_prefix(id + 1); }

void RocksDbStore::set_table(TableEntry t) {
  uint32_t id = t.def.id;
  pending_.tables[id] = std::make_shared<const TableEntry>(std::move(t));
  dirty_tables_.insert(id);
}

void RocksDbStore::drop(uint32_t id) {
  del_range(table_begin(id), table_end(id));
  pending_.tables.erase(id);
  dirty_tables_.insert(id);
}

void RocksDbStore::load() {
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
    if (auto v = get(meta_key(kTablesVersionName))) {
      if (v->size() != 8) throw Error(ErrorCategory::kDecode, "bad tables_version");
      committed_.tables_version = read_be(*v);
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

}  // namespace pgseed::rocks

namespace pgseed {

namespace {

std::string open_error(const std::string& where, const rocksdb::Status& s) {
  std::string msg = rocks::one_line(s.ToString());
  std::string lower = msg;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (s.IsIOError() && lower.find("lock") != std::string::npos)
    return where + " is in use: another process (or another open store) holds its LOCK: " + msg;
  if (s.IsCorruption()) return where + " is corrupt: " + msg;
  return where + " cannot be opened: " + msg;
}

}  // namespace

namespace rocksdb_store_testing {

using namespace rocks;

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

std::unique_ptr<Store> open_rocksdb_store(const std::string& path, bool must_exist) {
  const std::string where = "rocksdb store '" + path + "'";
  std::error_code ec;
  rocks::fs::file_status st = rocks::fs::status(path, ec);
  if (st.type() == rocks::fs::file_type::not_found) {
    if (must_exist) throw Error(ErrorCategory::kStore, where + " does not exist");
  } else if (ec) {
    throw Error(ErrorCategory::kStore, where + " cannot be read: " + ec.message());
  } else if (!rocks::fs::is_directory(st)) {
    throw Error(ErrorCategory::kStore, where + " is not a directory (a RocksDB store is one)");
  } else if (!rocks::fs::exists(rocks::fs::path(path) / "CURRENT", ec)) {
    // Empty, or only what RocksDB writes before CURRENT while it creates a database (a
    // run killed at that moment, kill -9): nothing of a store is in it yet, and DB::Open
    // (which takes RocksDB's LOCK first) creates the database over it.
    bool only_creation_files = true;
    for (const auto& e : rocks::fs::directory_iterator(path, ec)) {
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
  // memtables and a small block cache, which holds the index blocks too (table_factory:
  // they no longer grow with the data); LZ4 keeps the files small at little CPU cost.
  // The cache is 4 MB: 8 MB cost ~6 MB more of peak RSS on the 10M-row catch-up at no
  // CPU saving (blocks not cached come from the page cache, LZ4-decompressed); 12 MB
  // memtables instead of 16 saved as much but cost 25-40% more CPU (more compaction).
  options.write_buffer_size = 16u << 20;
  options.max_write_buffer_number = 2;
  options.max_background_jobs = 2;
  options.compression = rocksdb::kLZ4Compression;
  options.table_factory = rocksdb_layout::table_factory(4u << 20);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) throw Error(ErrorCategory::kStore, open_error(where, s));
  return std::make_unique<rocks::RocksDbStore>(path, std::unique_ptr<rocksdb::DB>(raw));
}

}  // namespace pgseed
