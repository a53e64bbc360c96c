// RocksDbStore: the initial copy as a bulk load: runs of SST files, the sort buffer, and
// ingestion in rounds of disjoint files.
#include "store/rocksdb/rocksdb_store_impl.h"

#include <rocksdb/file_system.h>
#include <rocksdb/slice.h>

#include <algorithm>
#include <filesystem>
#include <queue>
#include <system_error>

#include "pgseed/error.h"

namespace pgseed::rocks {

namespace {

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

}  // namespace

void RocksDbStore::begin_bulk_load() {
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

void RocksDbStore::finish_bulk_load(const StoreState& final_state) {
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

void RocksDbStore::abort_bulk_load() noexcept {
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

std::string RocksDbStore::bulk_dir() const { return path_ + "/" + kBulkDir; }

void RocksDbStore::bulk_cleanup() noexcept {
  std::error_code ec;
  fs::remove_all(bulk_dir(), ec);
}

void RocksDbStore::require_no_bulk(const char* op) const {
  if (bulk_)
    throw Error(ErrorCategory::kInternal,
                std::string(op) + "() during a bulk load (only create_table and insert_batch)");
}

void RocksDbStore::bulk_insert(const TableEntry& t, const EncodedBatch& rows) {
  BulkTable& bt = bulk_tables_[t.def.id];
  std::string_view bytes = rows.bytes;
  for (auto [key_size, value_size] : rows.sizes) {
    std::string key(bytes.substr(0, key_size));
    append_row_seq(t, key);
    bulk_add(bt, std::move(key), std::string(bytes.substr(key_size, value_size)));
    bytes.remove_prefix(key_size + value_size);
  }
}

bool RocksDbStore::heap_after(const BulkRow& a, const BulkRow& b) {
  if (a.head != b.head) return a.head > b.head;
  if (a.key.size() <= 20 && b.key.size() <= 20 && a.key.size() != b.key.size())
    return a.key.size() > b.key.size();
  return a.key > b.key;
}

void RocksDbStore::bulk_add(BulkTable& bt, std::string key, std::string value) {
  // A table's first rows share the sort buffer's files with other small tables.
  if (bt.runs.empty() && bt.sorted_bytes < std::min(kBulkSmallTableBytes, g_bulk_file_bytes / 64)) {
    bt.sorted_bytes += key.size() + value.size();
    return sort_add(key, value);
  }
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
  BulkRow row(std::move(key), std::move(value));
  if (best->ascending.empty() || !heap_after(best->ascending.back(), row)) {
    best->ascending.push_back(std::move(row));
  } else {
    best->heap.push_back(std::move(row));
    std::push_heap(best->heap.begin(), best->heap.end(), heap_after);
  }
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
        if (r->heap_bytes > 0 && (!lru || r->used < lru->used)) lru = r.get(), lru_table = &t;
    if (lru) {
      drain(*lru);
      restore_order(*lru_table, lru);
    }
  }
}

void RocksDbStore::write_smallest(BulkRun& run) {
  const bool from_heap = !run.heap.empty() &&
                         (run.ascending.empty() || heap_after(run.ascending.front(), run.heap.front()));
  if (from_heap) std::pop_heap(run.heap.begin(), run.heap.end(), heap_after);
  BulkRow& row = from_heap ? run.heap.back() : run.ascending.front();
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
  if (from_heap)
    run.heap.pop_back();
  else
    run.ascending.pop_front();
}

void RocksDbStore::drain(BulkRun& run) {
  while (!run.heap.empty() || !run.ascending.empty()) write_smallest(run);
}

void RocksDbStore::restore_order(BulkTable& bt, BulkRun* run) {
  auto& runs = bt.runs;
  size_t i = 0;
  while (i < runs.size() && runs[i].get() != run) ++i;
  for (; i + 1 < runs.size() && runs[i + 1]->last < runs[i]->last; ++i) std::swap(runs[i], runs[i + 1]);
}

void RocksDbStore::open_file(BulkRun& run, const std::string& first_key) {
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

void RocksDbStore::close_file(BulkRun& run) {
  rocksdb::ExternalSstFileInfo info;
  rocksdb::Status s = run.writer->Finish(&info);
  run.writer.reset();
  --open_files_;
  if (!s.ok()) fail(s, "writing a bulk load file in " + bulk_dir());
  bulk_files_.push_back({info.file_path, info.smallest_key, info.largest_key, info.file_size});
  crash_point("bulk_file");
}

void RocksDbStore::sort_add(std::string_view key, std::string_view value) {
  ++g_bulk_rows_sorted;
  sort_entries_.push_back({sort_arena_.size(), static_cast<uint32_t>(key.size()),
                           static_cast<uint32_t>(value.size())});
  sort_arena_ += key;
  sort_arena_ += value;
  if (sort_arena_.size() >= g_bulk_sort_bytes) write_sorted();
}

void RocksDbStore::write_sorted() {
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

bool RocksDbStore::keep_finished_tables() {
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

void RocksDbStore::ingest_finished_tables() {
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

void RocksDbStore::ingest_files() {
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
    read_it_.it.reset();  // an ingestion need not move the sequence number a kept iterator checks
    if (!s.ok()) fail(s, "ingesting the initial copy failed");
    g_bulk_files_ingested += paths.size();

    crash_point("bulk_ingest");
    left = std::move(rest);
  }
}

}  // namespace pgseed::rocks
