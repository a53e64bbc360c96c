// RocksDbStore: writing a transaction: the WriteBatch with or without the WAL, spilling a
// large one to the overlay range, its commit record and the merge, and reads inside it.
#include "store/rocksdb/rocksdb_store_impl.h"

#include <rocksdb/iterator.h>
#include <rocksdb/slice.h>

#include <exception>

#include "common/bytes.h"
#include "pgseed/error.h"

namespace pgseed::rocks {

void RocksDbStore::write_meta_changes(rocksdb::WriteBatch& batch) {
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
  // Readers reload the definitions only when this counter moves (rocksdb_reader.cpp).
  if (!dirty_tables_.empty() || pending_.state.phase != committed_.state.phase) {
    pending_.tables_version = committed_.tables_version + 1;
    std::string v;
    append_be(v, pending_.tables_version, 8);
    batch.Put(slice(meta_key(kTablesVersionName)), slice(v));
  }
  if (pending_.next_row_seq != committed_.next_row_seq) {
    std::string v;
    append_be(v, pending_.next_row_seq, 8);
    batch.Put(slice(meta_key("next_row_seq")), slice(v));
  }
}

void RocksDbStore::flush_copy(bool end_on_failure) {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;
  read_it_.it.reset();  // (a kept iterator would hold the memtable being flushed)
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

void RocksDbStore::write_wal(rocksdb::WriteBatch& b, const char* what, bool sync) const {
  read_it_.it.reset();  // released now: a kept iterator would hold the memtables this write fills
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status s = db_->Write(wo, &b);
  if (!s.ok()) fail(s, std::string(what) + " failed");
}

void RocksDbStore::put(std::string_view k, std::string_view v, bool index) {
  if (!spilled_) batch_.Put(slice(k), slice(v));
  if (index && !overlay_stale_) overlay_.put(k, v);
  maybe_spill();
}

void RocksDbStore::del(std::string_view k) {
  if (!spilled_) batch_.Delete(slice(k));
  if (!overlay_stale_) overlay_.del(k);
  maybe_spill();
}

void RocksDbStore::del_range(std::string_view b, std::string_view e) {
  if (!spilled_) {
    batch_.DeleteRange(slice(b), slice(e));
    batch_has_range_ = true;
  } else {
    // Spilled entries in the range are older than this delete: they go now, so that
    // every overlay entry is newer than the range deletes covering it.
    rocksdb::WriteBatch d;
    d.DeleteRange(slice(overlay_key(b)), slice(overlay_key(e)));
    write_wal(d, "writing the transaction's overlay");
  }
  if (!overlay_stale_) overlay_.del_range(b, e);
}

size_t RocksDbStore::bytes_in_memory() const {
  return overlay_.bytes + (spilled_ ? 0 : batch_.GetDataSize());
}

void RocksDbStore::maybe_spill() {
  if (copy_txn() && !spilled_) return;  // copy rows go to the database in copy batches
  if (bytes_in_memory() > spill_bytes_) spill();
}

bool RocksDbStore::wants_commit() const {
  // Half the spill size: the caller's next unit of work (a source transaction) then
  // still fits, unless it is a large one, which spills in any case.
  return in_txn_ && !spilled_ && !copy_txn() && bytes_in_memory() >= spill_bytes_ / 2;
}

namespace {
// Writes a transaction's writes as overlay entries, in writes of about 1 MB; as a
// WriteBatch handler, the writes of a batch in order (a later entry of a key wins, as in
// the map). What a write throws is kept and rethrown by rethrow_failure(), not thrown
// through RocksDB's Iterate.
class OverlayWriter : public rocksdb::WriteBatch::Handler {
 public:
  explicit OverlayWriter(std::function<void(rocksdb::WriteBatch&)> write) : write_(std::move(write)) {}
  rocksdb::Status PutCF(uint32_t, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
    return add(view(k), std::string(view(v)));
  }
  rocksdb::Status DeleteCF(uint32_t, const rocksdb::Slice& k) override { return add(view(k), std::nullopt); }
  rocksdb::Status add(std::string_view k, const std::optional<std::string>& v) {
    b_.Put(slice(overlay_key(k)), slice(overlay_value(v)));
    if (b_.GetDataSize() > (1u << 20)) {
      try {
        write_(b_);
      } catch (...) {
        failed_ = std::current_exception();
        return rocksdb::Status::Aborted("spill write failed");
      }
      b_.Clear();
    }
    return rocksdb::Status::OK();
  }
  void rethrow_failure() const {
    if (failed_) std::rethrow_exception(failed_);
  }
  void finish() { write_(b_); }

 private:
  std::function<void(rocksdb::WriteBatch&)> write_;
  rocksdb::WriteBatch b_;
  std::exception_ptr failed_;
};
}  // namespace

void RocksDbStore::spill() {
  // A transaction that has not read has no map: it is spilled from its batch (building the
  // map now would double its memory at its largest). Its range deletes, if any, are the
  // map's to order against its writes: then the map is built.
  if (overlay_stale_ && batch_has_range_) sync_overlay();
  if (unflushed_copy_) flush_copy(/*end_on_failure=*/false);  // see "Large transactions"
  spilled_ = true;  // from here on, rollback() clears the overlay range
  overlay_dirty_ = true;
  OverlayWriter writer([&](rocksdb::WriteBatch& b) { write_wal(b, "spilling the transaction"); });
  if (overlay_stale_) {
    rocksdb::Status s = batch_.Iterate(&writer);
    writer.rethrow_failure();
    if (!s.ok()) fail(s, "spilling the transaction failed");
    overlay_stale_ = false;  // the map is empty, and the overlay holds every write: in line
  } else {
    for (const auto& [k, v] : overlay_.writes) {
      writer.add(k, v);
      writer.rethrow_failure();
    }
  }
  writer.finish();
  overlay_.clear_writes();
  batch_.Clear();
  batch_has_range_ = false;
  ++g_spill_count;
  crash_point("spill");
}

void RocksDbStore::commit_spilled() {
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

void RocksDbStore::merge_overlay() {
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

void RocksDbStore::clear_overlay() {
  overlay_dirty_ = true;
  rocksdb::WriteBatch b;
  b.DeleteRange(slice(overlay_all_begin()), slice(overlay_all_end()));
  write_wal(b, "clearing a rolled back transaction");
  overlay_dirty_ = false;
}

void RocksDbStore::try_clear_overlay() noexcept {
  try {
    clear_overlay();
  } catch (...) {
    // Left to the next begin() or open().
  }
}

void RocksDbStore::sync_overlay() const {
  if (!overlay_stale_) return;
  overlay_.clear();
  OverlayBuilder builder(overlay_);
  rocksdb::Status s = batch_.Iterate(&builder);
  if (!s.ok()) fail(s, "indexing the transaction failed");
  overlay_stale_ = false;
}

std::optional<std::string_view> RocksDbStore::overlay_entry(std::string_view v) const {
  if (!v.empty() && v[0] == kOverlayPut) return v.substr(1);
  if (v.size() == 1 && v[0] == kOverlayDelete) return std::nullopt;
  throw Error(ErrorCategory::kStore, where() + " is corrupt: bad overlay entry");
}

std::optional<std::string> RocksDbStore::get(std::string_view key) const {
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

void RocksDbStore::BoundedIterator::bound(std::string_view end) {
  upper_key.assign(end);
  upper = slice(upper_key);
}

void RocksDbStore::open_bounded(rocksdb::DB& db, BoundedIterator& b, std::string_view end) {
  b.bound(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &b.upper;
  b.it.reset(db.NewIterator(ro));
}

RocksDbStore::DbIterator::DbIterator(const RocksDbStore& store, std::string_view end) : store_(store) {
  if (!store.in_txn_ || store.read_it_busy_) {
    own_ = std::make_unique<BoundedIterator>();
    open_bounded(*store.db_, *own_, end);
    it_ = own_->it.get();
    return;
  }
  BoundedIterator& kept = store.read_it_;
  rocksdb::SequenceNumber seq = store.db_->GetLatestSequenceNumber();
  if (!kept.it || seq != store.read_it_seq_) {
    kept.it.reset();
    open_bounded(*store.db_, kept, end);
    store.read_it_seq_ = seq;
  } else {
    kept.bound(end);  // the kept iterator reads its new bound at the next Seek
  }
  store.read_it_busy_ = true;
  it_ = kept.it.get();
}

RocksDbStore::DbIterator::~DbIterator() {
  if (!own_) store_.read_it_busy_ = false;
}

void RocksDbStore::for_each(std::string_view begin, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) const {
  DbIterator it(*this, end);
  it->Seek(slice(begin));
  // The bound is checked here too: a kept iterator's new bound is not RocksDB's documented
  // use (it works, but a key past `end` must never reach fn, whatever RocksDB caches).
  auto db_valid_now = [&] { return it->Valid() && view(it->key()) < end; };
  if (!in_txn_) {
    for (; db_valid_now(); it->Next())
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
    const bool db_valid = db_valid_now();
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

}  // namespace pgseed::rocks
