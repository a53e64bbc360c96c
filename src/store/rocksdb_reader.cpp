#include "store/rocksdb_reader.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>

#include "common/bytes.h"
#include "pgseed/error.h"
#include "store/rocksdb/rocksdb_layout.h"

namespace pgseed {

namespace {

namespace fs = std::filesystem;
using namespace rocksdb_layout;

// TryCatchUpWithPrimary can fail transiently when the writer deletes a file (a WAL after a
// flush, a table file after a compaction) between the secondary reading the MANIFEST and
// opening the file; a second attempt reads the newer MANIFEST.
constexpr int kCatchUpAttempts = 5;

// The view's metadata, decoded once per change of the store.
struct ViewMeta {
  StoreState state;
  bool merge_pending = false;  // a committed large transaction's overlay is not merged yet
  std::optional<uint64_t> tables_key;  // the store's tables_version, when it has one
  std::map<uint32_t, std::string> table_bytes;  // encoded definitions, by id
  std::map<uint32_t, TableEntry> tables;
  uint64_t tables_version = 0;  // this reader's: moves when `tables` changed
};

class RocksDbReader final : public StoreReader {
 public:
  RocksDbReader(std::string path, std::string secondary_dir, std::unique_ptr<rocksdb::DB> db)
      : path_(std::move(path)), secondary_dir_(std::move(secondary_dir)), db_(std::move(db)) {
    std::unique_lock lock(mu_);
    load_view();
  }

  ~RocksDbReader() override {
    if (db_) db_->Close().PermitUncheckedError();
    db_.reset();
    std::error_code ec;
    fs::remove_all(secondary_dir_, ec);
  }

  StoreState state() const override {
    std::shared_lock lock(mu_);
    return meta_.state;
  }

  std::vector<TableDef> tables() const override {
    std::shared_lock lock(mu_);
    std::vector<TableDef> out;
    for (const auto& [id, t] : meta_.tables) out.push_back(t.def);
    return out;
  }

  uint64_t tables_version() const override {
    std::shared_lock lock(mu_);
    return meta_.tables_version;
  }

  void refresh() override {
    std::unique_lock lock(mu_);
    rocksdb::Status s;
    for (int i = 0; i < kCatchUpAttempts; ++i) {
      s = db_->TryCatchUpWithPrimary();
      if (s.ok()) break;
    }
    if (!s.ok()) fail(s, "catching up with its writer failed");
    if (db_->GetLatestSequenceNumber() == seq_) return;  // nothing new
    load_view();
  }

  void scan(const TableDef& def, const std::function<void(const Row&)>& fn) const override {
    std::shared_lock lock(mu_);
    const TableEntry& t = entry(def);
    RowBuffers buf;
    Row row;
    for_each(KeyCodec::table_prefix(def.id), KeyCodec::table_prefix(def.id + 1),
             [&](std::string_view, std::string_view v) {
               decode_row(t, v, buf, row);
               fn(row);
             });
  }

  uint64_t count(const TableDef& def) const override {
    std::shared_lock lock(mu_);
    entry(def);
    uint64_t n = 0;
    for_each(KeyCodec::table_prefix(def.id), KeyCodec::table_prefix(def.id + 1),
             [&](std::string_view, std::string_view) { ++n; });
    return n;
  }

  bool lookup(const TableDef& def, std::span<const std::string> key,
              const std::function<void(const Row&)>& fn) const override {
    std::optional<std::string> v;
    {
      std::shared_lock lock(mu_);
      const TableEntry& t = entry(def);
      if (t.codec.keyed() && key.size() == t.codec.columns().size()) {
        v = get(key_of(t, key));
        if (!v) return false;
        RowBuffers buf;
        Row row;
        decode_row(t, *v, buf, row);
        fn(row);
        return true;
      }
    }
    return StoreReader::lookup(def, key, fn);  // no key, or a key that does not fit: reports it
  }

 private:
  std::string where() const { return "rocksdb store '" + path_ + "'"; }

  [[noreturn]] void fail(const rocksdb::Status& s, const std::string& what) const {
    throw Error(ErrorCategory::kStore, where() + ": " + what + ": " + one_line(s.ToString()));
  }

  const TableEntry& entry(const TableDef& def) const {
    auto it = meta_.tables.find(def.id);
    if (it == meta_.tables.end())
      throw Error(ErrorCategory::kInternal, "table " + def.qualified() + " (id " +
                                                std::to_string(def.id) + ") is not in the store");
    return it->second;
  }

  std::optional<std::string> raw_get(std::string_view key) const {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), slice(key), &v);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) fail(s, "read failed");
    return v;
  }

  static std::optional<std::string_view> overlay_entry(std::string_view v, const std::string& where) {
    if (!v.empty() && v[0] == kOverlayPut) return v.substr(1);
    if (v.size() == 1 && v[0] == kOverlayDelete) return std::nullopt;
    throw Error(ErrorCategory::kStore, where + " is corrupt: bad overlay entry");
  }

  // A row's stored value in the view: while a committed transaction's merge is pending,
  // its overlay entry (the final value) wins over the row.
  std::optional<std::string> get(std::string_view key) const {
    if (meta_.merge_pending) {
      if (std::optional<std::string> o = raw_get(overlay_key(key))) {
        std::optional<std::string_view> e = overlay_entry(*o, where());
        return e ? std::optional<std::string>(std::string(*e)) : std::nullopt;
      }
    }
    return raw_get(key);
  }

  // Every row in [begin, end) in key order, as the view holds it (see get()).
  void for_each(const std::string& begin, const std::string& end,
                const std::function<void(std::string_view, std::string_view)>& fn) const {
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper = slice(end);
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    it->Seek(slice(begin));
    if (!meta_.merge_pending) {
      for (; it->Valid(); it->Next()) fn(view(it->key()), view(it->value()));
      if (!it->status().ok()) fail(it->status(), "read failed");
      return;
    }
    const std::string ov_upper_key = overlay_key(end);
    rocksdb::Slice ov_upper = slice(ov_upper_key);
    rocksdb::ReadOptions ov_ro;
    ov_ro.iterate_upper_bound = &ov_upper;
    std::unique_ptr<rocksdb::Iterator> ov(db_->NewIterator(ov_ro));
    ov->Seek(slice(overlay_key(begin)));
    while (it->Valid() || ov->Valid()) {
      std::string_view row_key = it->Valid() ? view(it->key()) : std::string_view();
      std::string_view ov_key =
          ov->Valid() ? view(ov->key()).substr(kOverlayPrefixSize) : std::string_view();
      if (ov->Valid() && (!it->Valid() || ov_key <= row_key)) {
        if (std::optional<std::string_view> e = overlay_entry(view(ov->value()), where()))
          fn(ov_key, *e);
        if (it->Valid() && ov_key == row_key) it->Next();
        ov->Next();
      } else {
        fn(row_key, view(it->value()));
        it->Next();
      }
    }
    if (!it->status().ok()) fail(it->status(), "read failed");
    if (!ov->status().ok()) fail(ov->status(), "read failed");
  }

  // Reads the view's metadata (under the exclusive lock). Definitions are decoded again
  // only when the store's tables_version moved, or, in a store without one, when their
  // bytes changed.
  void load_view() {
    const rocksdb::SequenceNumber seq = db_->GetLatestSequenceNumber();
    std::optional<std::string> version = raw_get(meta_key("format_version"));
    if (!version)
      throw Error(ErrorCategory::kStore, where() + " is not a pgseed store (no format-version key)");
    if (*version != kFormatVersion)
      throw Error(ErrorCategory::kStore, where() + " has pgseed store format version '" +
                                             one_line(*version) + "'; this pgseed reads version " +
                                             std::string(kFormatVersion));
    try {
      ViewMeta m;
      std::optional<std::string> state = raw_get(meta_key("state"));
      if (!state) throw Error(ErrorCategory::kDecode, "no state key");
      m.state = decode_state(*state);
      m.merge_pending = raw_get(meta_key("merge_pending")).has_value();
      if (std::optional<std::string> v = raw_get(meta_key(kTablesVersionName))) {
        if (v->size() != 8) throw Error(ErrorCategory::kDecode, "bad tables_version");
        m.tables_key = read_be(*v);
      }
      if (loaded_ && m.tables_key && m.tables_key == meta_.tables_key) {
        m.table_bytes = std::move(meta_.table_bytes);
        m.tables = std::move(meta_.tables);
        m.tables_version = meta_.tables_version;
      } else {
        std::string b = table_meta_key(0);
        b.resize(b.size() - 4);
        rocksdb::ReadOptions ro;
        const std::string upper_key = prefix_end(b);
        rocksdb::Slice upper = slice(upper_key);
        ro.iterate_upper_bound = &upper;
        std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
        for (it->Seek(slice(b)); it->Valid(); it->Next()) {
          std::string_view key = view(it->key());
          if (key.size() != b.size() + 4) throw Error(ErrorCategory::kDecode, "bad table key");
          m.table_bytes[static_cast<uint32_t>(read_be(key.substr(b.size())))] = view(it->value());
        }
        if (!it->status().ok()) fail(it->status(), "read failed");
        if (loaded_ && m.table_bytes == meta_.table_bytes) {
          m.tables = std::move(meta_.tables);
          m.tables_version = meta_.tables_version;
        } else {
          for (const auto& [id, bytes] : m.table_bytes) m.tables.emplace(id, decode_table(id, bytes));
          m.tables_version = meta_.tables_version + 1;
        }
      }
      meta_ = std::move(m);
      loaded_ = true;
      seq_ = seq;  // only now: a failed load is tried again by the next refresh()
    } catch (const Error& e) {
      if (e.category() != ErrorCategory::kDecode) throw;
      throw Error(ErrorCategory::kStore, where() + " is corrupt: bad metadata: " + e.what());
    }
  }

  std::string path_;
  std::string secondary_dir_;
  std::unique_ptr<rocksdb::DB> db_;
  mutable std::shared_mutex mu_;  // reads shared; refresh() (catching up) exclusive
  rocksdb::SequenceNumber seq_ = 0;  // the secondary's last sequence when meta_ was read
  bool loaded_ = false;
  ViewMeta meta_;
};

std::string make_secondary_dir() {
  std::error_code ec;
  fs::path base = fs::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string tmpl = (base / "pgseed-reader-XXXXXX").string();
  if (!mkdtemp(tmpl.data()))
    throw Error(ErrorCategory::kStore,
                "cannot create a temporary directory for a store reader in " + base.string());
  return tmpl;
}

}  // namespace

std::unique_ptr<StoreReader> open_rocksdb_reader(const std::string& path) {
  const std::string where = "rocksdb store '" + path + "'";
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) throw Error(ErrorCategory::kStore, where + " does not exist");
  if (ec) throw Error(ErrorCategory::kStore, where + " cannot be read: " + ec.message());
  if (!fs::is_directory(st))
    throw Error(ErrorCategory::kStore, where + " is not a directory (a RocksDB store is one)");
  if (!fs::exists(fs::path(path) / "CURRENT", ec))
    throw Error(ErrorCategory::kStore, where + " is not a pgseed store (no RocksDB database in it)");

  std::string secondary = make_secondary_dir();
  rocksdb::Options options;
  options.max_open_files = -1;  // keep every table file open (see rocksdb_reader.h)
  // A catch-up loads the table handlers of the version it installs with this many threads,
  // created and joined at every catch-up (16 by default: ~4 ms per refresh()); the files a
  // catch-up adds are few, and one thread opens them.
  options.max_file_opening_threads = 1;
  options.keep_log_file_num = 1;
  options.max_background_jobs = 1;
  options.table_factory = rocksdb_layout::table_factory(8u << 20);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenAsSecondary(options, path, secondary, &raw);
  if (!s.ok()) {
    fs::remove_all(secondary, ec);
    std::string msg = one_line(s.ToString());
    throw Error(ErrorCategory::kStore, where + (s.IsCorruption() ? " is corrupt: " : " cannot be read: ") + msg);
  }
  try {
    return std::make_unique<RocksDbReader>(path, secondary, std::unique_ptr<rocksdb::DB>(raw));
  } catch (...) {
    // RocksDbReader's constructor threw after taking `raw`: its members closed it; the
    // directory is ours to remove.
    fs::remove_all(secondary, ec);
    throw;
  }
}

}  // namespace pgseed
