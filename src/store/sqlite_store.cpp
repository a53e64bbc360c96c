#include "store/sqlite_store.h"

#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>
#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string_view>

#include "pgseed/error.h"
#include "store/sqlite_values.h"
#include "model/value_codec.h"

namespace pgseed {

// The placeholder column of a table without columns (see create_sql).
constexpr const char* kNoColumns = "_pgseed_no_columns";

namespace {

// The store's format (sqlite_values.h): this pgseed writes format 2; it reads format 1 as
// it is and brings it to format 2 when it becomes the store's writer (claim_writer).
constexpr const char* kFormat = "pgseed-sqlite-2";
constexpr const char* kFormat1 = "pgseed-sqlite-1";

std::string qi(std::string_view id) {  // SQLite identifier quoting
  std::string out = "\"";
  for (char c : id) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// The table name a source table is first offered (see sqlite_store.h): what pgseed has
// always used, so that existing stores and queries keep their names.
std::string readable_name(const std::string& schema, const std::string& name) {
  return schema == "public" ? name : schema + "." + name;
}

// Names SQLite reserves (`sqlite_*`: CREATE TABLE refuses them) and pgseed's own metadata
// tables; both compared ignoring ASCII case, as SQLite compares names.
bool reserved_name(std::string_view n) {
  auto starts = [&](std::string_view prefix) {
    if (n.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
      char c = n[i];
      if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
      if (c != prefix[i]) return false;
    }
    return true;
  };
  return starts("sqlite_") || starts("_pgseed_");
}

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

struct DbDeleter {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, DbDeleter>;

constexpr int kBusyTimeoutMs = 10000;  // how long a statement waits for another process's lock

// Opens `path` into `db` (set also on failure: it carries the message); SQLite's code.
int open_db(const std::string& path, int flags, Db& db) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  db.reset(raw);
  if (rc == SQLITE_OK) sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  return rc;
}
std::string open_error(const Db& db, int rc) { return db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc); }

// Where the initial copy is built before it takes the store's place (see begin_bulk_load).
std::string bulk_path_of(const std::string& path) { return path + "-pgseed-copy"; }

void remove_files(const std::string& base, std::initializer_list<const char*> suffixes) {
  std::error_code ec;
  for (const char* s : suffixes) std::filesystem::remove(base + s, ec);
}
// An unfinished (or crashed) initial copy of the store at `path`.
void remove_bulk_copy(const std::string& path) {
  remove_files(bulk_path_of(path), {"", "-journal", "-wal", "-shm"});
}

// One writer per store: an exclusive flock on the file (independent of the fcntl locks
// SQLite takes; readers are not affected). Returns the descriptor that holds it.
int lock_writer(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (fd >= 0) ::close(fd);
    throw Error(ErrorCategory::kStore, "store " + path + " is in use by another pgseed process");
  }
  return fd;
}

// SQLite's declared type for a column. Chosen so that type affinity never alters a bound
// value: floats get no declared type (BLOB affinity), because REAL affinity would turn the
// text '-0' we store for -0 into 0. numeric(p<=15,s) is REAL, so that SQL compares its
// values as numbers (the text 'NaN' has no number form and stays text).
const char* declared_type(const ColumnDef& c) {
  if (numeric_real_scale(c.base_type_oid, c.type_mod)) return "REAL";
  switch (c.storage) {
    case StorageClass::kInteger:
    case StorageClass::kBool: return "INTEGER";
    case StorageClass::kReal: return "";
    case StorageClass::kBytes: return "BLOB";
    case StorageClass::kText: return "TEXT";
  }
  return "";
}

// The stream apply path's prepared statements of one table: found without building a
// key per change (the apply loop calls upsert/update/remove once per change).
struct ApplyStatements {
  bool keyed = false;
  Stmt upsert, remove;
  std::map<std::string, Stmt> updates;  // by update mask (see SqliteStore::update)
};

// Prepared statements by "table id:kind", plus the apply path's per-table ones; clear()
// (a rollback, a reset) drops both.
class StatementCache : public std::map<std::string, Stmt> {
 public:
  void clear() {
    last_ = nullptr;
    apply_.clear();
    std::map<std::string, Stmt>::clear();
  }
  ApplyStatements& apply(const TableDef& def) {
    if (last_ && last_id_ == def.id) return *last_;
    auto [it, added] = apply_.try_emplace(def.id);
    if (added) it->second.keyed = def.has_key();
    last_id_ = def.id;
    last_ = &it->second;
    return it->second;
  }
  void forget_apply(uint32_t id) {
    last_ = nullptr;
    apply_.erase(id);
  }

 private:
  std::map<uint32_t, ApplyStatements> apply_;
  uint32_t last_id_ = 0;
  ApplyStatements* last_ = nullptr;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, bool must_exist) : path_(std::move(path)) {
    namespace fs = std::filesystem;
    std::error_code ec;
    bool exists = fs::exists(path_, ec);
    if (!exists && must_exist)
      throw Error(ErrorCategory::kStore, "store " + path_ + " does not exist");
    if (exists && fs::is_directory(path_, ec))
      throw Error(ErrorCategory::kStore,
                  "store " + path_ + " is a directory (a RocksDB store? use rocksdb:" + path_ + ")");
    static std::once_flag configured;
    std::call_once(configured, [] {
      // No memory statistics: a global mutex and counters on every allocation (~3% of
      // the copy). Only possible before SQLite initialises; harmless if it already has.
      sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    });
    int rc = open_db(path_, SQLITE_OPEN_READWRITE | (must_exist ? 0 : SQLITE_OPEN_CREATE), db_);
    // A read-only file can still be read (dump, status); writes then fail clearly.
    if (rc != SQLITE_OK && exists) rc = open_db(path_, SQLITE_OPEN_READONLY, db_);
    if (rc != SQLITE_OK)
      throw Error(ErrorCategory::kStore, "cannot open store " + path_ + ": " + open_error(db_, rc));
    read_only_ = sqlite3_db_readonly(db_.get(), "main") == 1;
    try {
      // Any read of the schema tells a corrupt or foreign file apart.
      bool has_meta = query_int(
          "SELECT count(*) FROM sqlite_master WHERE name = '_pgseed_state'") > 0;
      int64_t others = query_int("SELECT count(*) FROM sqlite_master");
      if (!has_meta && others > 0)
        throw Error(ErrorCategory::kStore,
                    "store " + path_ + " is a SQLite file but not a pgseed store; refusing to touch it");
      // A new file gets 8 KB pages (fewer, fuller pages for row data; set before WAL mode,
      // which fixes the page size).
      if (others == 0 && !read_only_) exec("PRAGMA page_size=8192");
      apply_wal_settings();
      if (!has_meta) {
        if (read_only_) throw Error(ErrorCategory::kStore, "store " + path_ + " is read-only");
        create_metadata();
      }
      upgrade_metadata();
      load();
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::kStore) throw;
      throw Error(ErrorCategory::kStore, "store " + path_ + ": " + e.what());
    }
  }

  ~SqliteStore() override {
    if (main_db_) abort_bulk_load();
    stmts_.clear();
    if (in_txn_) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    db_.reset();
    // Only now: closing any descriptor of the file drops the process's POSIX locks,
    // which SQLite relies on.
    if (lock_fd_ >= 0) close(lock_fd_);
  }

  // Outside a transaction these re-read the file, so a reader sees what another process
  // (a running sync) committed since.
  StoreState state() const override {
    if (!in_txn_) const_cast<SqliteStore*>(this)->load();
    return state_;
  }
  std::vector<TableDef> tables() const override {
    if (!in_txn_) const_cast<SqliteStore*>(this)->load();
    return tables_;
  }

  void claim_writer(const LogSink& log) override {
    if (read_only_) throw Error(ErrorCategory::kStore, "store " + path_ + " is read-only");
    if (lock_fd_ < 0) lock_fd_ = lock_writer(path_);
    // Only the one writer rewrites an older format: no other pgseed writes meanwhile.
    if (format_ < kSqliteFormatNative && !in_txn_ && !main_db_) upgrade_format(log);
  }

  // The transaction spills to the file through the bounded page cache.
  bool prefers_long_transactions() const override { return true; }

  void begin() override {
    claim_writer({});
    // Durable commits, except for the bulk of the initial copy: a crash there only loses
    // a copy that restarts from scratch anyway (the phase stays kCopying until a durable
    // commit ends it).
    bool copying = state_.phase == StoreState::Phase::kCopying;
    if (!main_db_ && (copying != bulk_settings_ || !settings_applied_)) {
      exec(copying ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL");
      // The copy streams rows in key order and needs little cache (and its queue holds
      // memory); streaming updates rows anywhere, and re-reading evicted pages was ~11% of
      // apply time with 32 MB: both stay well under the 100 MB memory bound.
      exec(copying ? "PRAGMA cache_size=-32768" : "PRAGMA cache_size=-65536");
      bulk_settings_ = copying;
      settings_applied_ = true;
    }
    exec("BEGIN IMMEDIATE");
    in_txn_ = true;
    pending_state_ = state_;
    pending_tables_ = tables_;
    released_.clear();
  }

  void commit() override {
    exec("COMMIT");
    in_txn_ = false;
    state_ = pending_state_;
    tables_ = pending_tables_;
    released_.clear();
  }

  void rollback() override {
    if (!in_txn_) return;
    in_txn_ = false;
    released_.clear();
    stmts_.clear();  // statements may refer to tables the rollback removed
    exec("ROLLBACK");
  }

  void write_state(const StoreState& s) override {
    require_txn("write_state");
    auto put = [&](const char* key, const std::string& value) {
      Stmt st = prepare("INSERT OR REPLACE INTO _pgseed_state(key, value) VALUES (?, ?)");
      sqlite3_bind_text(st.get(), 1, key, -1, SQLITE_STATIC);
      sqlite3_bind_text(st.get(), 2, value.data(), int(value.size()), SQLITE_STATIC);
      step_done(st.get());
    };
    put("format", kFormat);
    put("phase", phase_name(s.phase));
    put("system_id", s.system_id);
    put("database", s.database);
    put("slot", s.slot);
    put("publication", s.publication);
    put("created_publication", s.created_publication ? "true" : "false");
    put("consistent_point", s.consistent_point.str());
    put("applied_lsn", s.applied_lsn.str());
    put("last_commit_time", s.last_commit_time);
    pending_state_ = s;
  }

  void reset() override {
    require_txn("reset");
    if (!main_db_) remove_bulk_copy(path_);  // an interrupted copy is given up too
    stmts_.clear();
    for (const auto& t : pending_tables_) exec("DROP TABLE IF EXISTS " + qi(t.sqlite_name));
    exec("DELETE FROM _pgseed_tables");
    exec("DELETE FROM _pgseed_columns");
    pending_tables_.clear();
    write_state(StoreState{});
  }

  void create_table(TableDef& def) override {
    require_txn("create_table");
    for (const auto& t : pending_tables_)
      if (t.schema == def.schema && t.name == def.name) {
        drop_table(t);
        break;
      }
    // A table copied again in this transaction keeps the name it had (see sqlite_store.h).
    auto released = released_.find({def.schema, def.name});
    if (released != released_.end() && name_free(released->second)) def.sqlite_name = released->second;
    else def.sqlite_name = choose_name(def);
    def.id = uint32_t(query_int("SELECT coalesce(max(id), 0) + 1 FROM _pgseed_tables"));
    exec(create_sql(def, def.sqlite_name));
    write_table_meta(def);
    pending_tables_.push_back(def);
  }

  void drop_table(const TableDef& def) override {
    require_txn("drop_table");
    const TableDef& stored = table_of(def);
    forget_statements(stored.id);
    released_[{stored.schema, stored.name}] = stored.sqlite_name;
    exec("DROP TABLE IF EXISTS " + qi(stored.sqlite_name));
    exec("DELETE FROM _pgseed_tables WHERE id = " + std::to_string(stored.id));
    exec("DELETE FROM _pgseed_columns WHERE table_id = " + std::to_string(stored.id));
    uint32_t id = stored.id;  // `stored` goes with the erase
    std::erase_if(pending_tables_, [&](const TableDef& t) { return t.id == id; });
  }

  void alter_table(const TableDef& from, const TableDef& to, std::span<const Datum> fill) override {
    require_txn("alter_table");
    const TableDef stored = table_of(from);
    const std::string& lname = stored.sqlite_name;
    forget_statements(from.id);
    // Rebuild the table: the simplest way that also handles key and type changes. The
    // rebuild's name has pgseed's reserved prefix, so no replicated table has it.
    std::string tmp = "_pgseed_rebuild_" + std::to_string(from.id);
    TableDef target = to;
    target.id = from.id;
    target.sqlite_name = lname;
    exec(create_sql(target, tmp));
    std::string cols, sel;
    for (size_t i = 0; i < target.columns.size(); ++i) {
      const auto& c = target.columns[i];
      bool existed = false;
      for (const auto& oc : from.columns)
        if (oc.name == c.name) existed = true;
      if (!cols.empty()) cols += ", ", sel += ", ";
      cols += qi(c.name);
      if (existed) {
        sel += qi(c.name);
      } else if (i < fill.size() && fill[i].kind == Datum::Kind::kText) {
        sel += "?" + std::to_string(i + 1);
      } else {
        sel += "NULL";
      }
    }
    Stmt st = prepare("INSERT INTO " + qi(tmp) + " (" + cols + ") SELECT " + sel + " FROM " +
                      qi(lname));
    for (size_t i = 0; i < target.columns.size() && i < fill.size(); ++i)
      if (fill[i].kind == Datum::Kind::kText) bind(st.get(), int(i + 1), target.columns[i], fill[i]);
    step_done(st.get());
    exec("DROP TABLE " + qi(lname));
    // Renamed: a name for the new name by the rule for new tables (the old one is free by
    // now, so it counts as taken by no one).
    if (target.schema != stored.schema || target.name != stored.name) target.sqlite_name = choose_name(target);
    exec("ALTER TABLE " + qi(tmp) + " RENAME TO " + qi(target.sqlite_name));
    exec("DELETE FROM _pgseed_columns WHERE table_id = " + std::to_string(from.id));
    exec("DELETE FROM _pgseed_tables WHERE id = " + std::to_string(from.id));
    write_table_meta(target);
    for (auto& t : pending_tables_)
      if (t.id == from.id) t = target;
  }

  void set_sync_state(const TableDef& def) override {
    require_txn("set_sync_state");
    Stmt st = prepare("UPDATE _pgseed_tables SET snapshot_lsn = ?, relfilenode = ? WHERE id = ?");
    std::string text = def.snapshot_lsn.str();
    sqlite3_bind_text(st.get(), 1, text.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st.get(), 2, def.relfilenode);
    sqlite3_bind_int64(st.get(), 3, def.id);
    step_done(st.get());
    for (auto& t : pending_tables_)
      if (t.id == def.id) t.snapshot_lsn = def.snapshot_lsn, t.relfilenode = def.relfilenode;
  }

  void insert_batch(const TableDef& def, const RowBatch& rows) override {
    require_txn("insert_batch");
    sqlite3_stmt* st = statement(def, "insert", [&] { return insert_sql(def, "INSERT"); });
    Row row;
    for (size_t i = 0; i < rows.rows(); ++i) {
      rows.row(i, row);
      bind_row(st, def, row, 1);
      step_done(st);
    }
  }

  void upsert(const TableDef& def, std::span<const Datum> row) override {
    require_txn("upsert");
    ApplyStatements& a = apply_statements(def);
    if (!a.upsert) a.upsert = prepare(insert_sql(def, a.keyed ? "INSERT OR REPLACE" : "INSERT"));
    bind_row(a.upsert.get(), def, row, 1);
    step_done(a.upsert.get());
  }

  void update(const TableDef& def, std::span<const Datum> old_row,
              std::span<const Datum> new_row) override {
    require_txn("update");
    // SET every column that has a new value; unchanged TOASTed ones keep the stored value.
    check_width(def, new_row);
    if (!old_row.empty()) check_width(def, old_row);
    ApplyStatements& a = apply_statements(def);
    // The statement depends on which columns are unchanged and on whether the key moved:
    // a key that did not move (no old row) is matched, not SET again, so that SQLite
    // updates the row in place instead of deleting and re-inserting it.
    bool key_moved = !old_row.empty();
    std::string& mask = mask_;
    mask.assign(1, key_moved ? 'k' : '-');
    bool any_value = false, any_unchanged = false;
    for (const auto& d : new_row) {
      bool unchanged = d.kind == Datum::Kind::kUnchanged;
      mask += unchanged ? 'u' : 'v';
      any_unchanged |= unchanged;
      any_value |= !unchanged;
    }
    if (!any_value) return;  // nothing to set
    auto it = a.updates.find(mask);
    if (it == a.updates.end()) {
      std::string sql = "UPDATE " + qi(name_of(def)) + " SET ";
      bool first = true;
      for (size_t i = 0; i < def.columns.size(); ++i) {
        if (mask[i + 1] == 'u') continue;
        if (!key_moved && a.keyed && def.columns[i].key_position > 0) continue;
        if (!first) sql += ", ";
        first = false;
        sql += qi(def.columns[i].name) + " = ?" + std::to_string(i + 1);
      }
      if (first) {
        // Only key columns have values, and they did not move: the row is as it was.
        // (It may be missing, e.g. it moved into a row filter: then insert it.)
        sql = "UPDATE " + qi(name_of(def)) + " SET " + qi(def.columns[0].name) + " = " +
              qi(def.columns[0].name);
      }
      sql += match_clause(def, def.columns.size() + 1);
      it = a.updates.emplace(mask, prepare(sql)).first;
    }
    sqlite3_stmt* st = it->second.get();
    std::span<const Datum> match = key_moved ? old_row : new_row;
    bind_row(st, def, new_row, 1);
    bind_match(st, def, match, int(def.columns.size()) + 1);
    step_done(st);
    if (sqlite3_changes(db_.get()) != 0) return;
    // The row was not there (e.g. it moved into a row filter): the new row is inserted,
    // its unchanged values taken from the old row where that is the whole row (no key).
    if (!any_unchanged) return upsert(def, new_row);
    if (a.keyed || old_row.empty())
      throw Error(ErrorCategory::kStore,
                  "table " + def.qualified() +
                      ": an update keeps unchanged TOAST values of a row the store does "
                      "not have; the replica has diverged from the source, sync it again");
    Row merged(new_row.begin(), new_row.end());
    for (size_t i = 0; i < merged.size(); ++i)
      if (merged[i].kind == Datum::Kind::kUnchanged) merged[i] = old_row[i];
    upsert(def, merged);
  }

  void remove(const TableDef& def, std::span<const Datum> old_row) override {
    require_txn("remove");
    check_width(def, old_row);
    ApplyStatements& a = apply_statements(def);
    if (!a.remove) a.remove = prepare("DELETE FROM " + qi(name_of(def)) + match_clause(def, 1));
    bind_match(a.remove.get(), def, old_row, 1);
    step_done(a.remove.get());
  }

  void truncate(const TableDef& def) override {
    require_txn("truncate");
    exec("DELETE FROM " + qi(name_of(def)));
  }

  // The initial copy is built beside the store, in PATH-pgseed-copy, with a rollback
  // journal and synchronous=NORMAL: SQLite then writes every page about once (WAL mode
  // writes it twice: to the WAL, then at the checkpoint; the journal holds only the few
  // pages that existed before a transaction, since the copy appends), and every commit is
  // durable and crash-safe. A table whose copy point a commit records is thus kept with its
  // rows, whatever happens next. finish_bulk_load() commits the final state into the new
  // file, switches it to WAL mode, fsyncs it and renames it over PATH: one atomic step from
  // "copying" to the complete replica. (A reader that opened the store during the copy
  // keeps seeing the old file until it reopens it.) Until then the store file says phase
  // `copying` and names the slot.
  //
  // Resuming (an interrupted copy: a crash, a stop): begin_bulk_load() takes up the file
  // aside when its state is the store's (same source, slot and consistent point), keeps
  // its finished tables and drops the others; any other file there is discarded.
  //
  // Readers: while the copy is built aside, the store file is in rollback-journal mode (it
  // holds only the state), so that no process has its WAL open when the new file takes its
  // place (a WAL-mode reader of the old file could otherwise, when it closes, checkpoint
  // and delete the WAL that by then belongs to the new file). If another process has the
  // store open in WAL mode when the copy starts, the copy is written in place as usual
  // (and an interrupted one resumes there: its finished tables are in the store file).
  void begin_bulk_load() override {
    if (in_txn_ || main_db_ || read_only_)
      throw Error(ErrorCategory::kInternal, "store " + path_ + ": bulk load in a bad state");
    if (!tables_.empty()) {  // an interrupted copy that was written in place
      remove_bulk_copy(path_);
      drop_unfinished_tables();
      return;
    }
    std::string bulk = bulk_path_of(path_);
    if (!leave_wal_mode()) {  // another process has the store open: copy in place
      remove_bulk_copy(path_);
      return;
    }
    const StoreState main_state = state_;
    const int main_format = format_;
    std::error_code ec;
    bool resume = std::filesystem::exists(bulk, ec) && open_aside(bulk, /*create=*/false);
    if (resume) {
      try {
        load();
        // A copy an older pgseed began is in the older format: started again.
        resume = same_copy(state_, main_state) && format_ == kSqliteFormatNative;
      } catch (const Error&) {  // not a copy this store can take up
        resume = false;
      }
      if (!resume) close_aside();
    }
    if (!resume) {
      state_ = main_state;
      format_ = main_format;
      tables_.clear();
      remove_bulk_copy(path_);
      open_aside(bulk, /*create=*/true);
    }
    try {
      if (!resume) exec("PRAGMA page_size=8192");
      exec("PRAGMA journal_mode=TRUNCATE");
      exec("PRAGMA synchronous=NORMAL");
      exec("PRAGMA cache_size=-32768");
      if (resume) {
        drop_unfinished_tables();
      } else {
        create_metadata();
        begin();
        write_state(main_state);
        commit();
      }
    } catch (...) {
      abort_bulk_load();
      throw;
    }
  }

  void finish_bulk_load(const StoreState& final_state) override {
    if (!main_db_) return Store::finish_bulk_load(final_state);  // copied in place
    if (in_txn_) throw Error(ErrorCategory::kInternal, "store " + path_ + ": bulk load in a transaction");
    std::string bulk = bulk_path_of(path_);
    // Everything that can fail comes before the store file is touched.
    begin();
    write_state(final_state);
    commit();
    stmts_.clear();
    exec("PRAGMA journal_mode=WAL");  // recorded in the file's header
    db_.reset();                      // closing checkpoints and removes the (empty) WAL
    fsync_path(bulk, O_RDONLY);
    // The old store file: checkpointed into itself so that no WAL of it is left for the
    // new file to pick up, then closed.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!swap_main_leaves_wal()) {
      if (std::chrono::steady_clock::now() > deadline)
        throw Error(ErrorCategory::kStore,
                    "store " + path_ + " is open in WAL mode in another process; close it so "
                    "that the finished initial copy can take its place");
      ::usleep(100 * 1000);
    }
    main_db_.reset();
    if (std::rename(bulk.c_str(), path_.c_str()) != 0) {
      int err = errno;
      remove_bulk_copy(path_);
      reopen_main();
      throw Error(ErrorCategory::kStore, "store " + path_ + ": cannot move the finished copy "
                                         "into place: " + std::strerror(err));
    }
    std::filesystem::path dir = std::filesystem::path(path_).parent_path();
    fsync_path(dir.empty() ? std::string(".") : dir.string(), O_RDONLY | O_DIRECTORY);
    remove_files(bulk, {"-journal"});  // the copy's own (empty) journal
    reopen_main();
  }

  void abort_bulk_load() noexcept override {
    if (!main_db_) return;
    close_aside();  // the file aside stays: a later begin_bulk_load() resumes it
    sqlite3_exec(db_.get(), "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    try {
      load();
    } catch (const Error&) {  // the store file is unchanged; the caller reports its error
    }
  }

  void scan(const TableDef& def, const std::function<void(const Row&)>& fn) const override {
    std::vector<std::pair<int, std::string>> keys;
    for (const auto& c : def.columns)
      if (c.key_position > 0) keys.push_back({c.key_position, qi(c.name)});
    std::sort(keys.begin(), keys.end());
    std::string order;
    for (const auto& k : keys) order += (order.empty() ? "" : ", ") + k.second;
    if (order.empty()) order = "rowid";
    Stmt st = prepare(select_sql(def) + " ORDER BY " + order);
    read_rows(st.get(), def, fn);
  }

  bool lookup(const TableDef& def, std::span<const std::string> key,
              const std::function<void(const Row&)>& fn) const override {
    std::vector<const ColumnDef*> key_cols(key.size(), nullptr);
    for (const auto& c : def.columns)
      if (c.key_position > 0 && size_t(c.key_position) <= key.size()) key_cols[c.key_position - 1] = &c;
    std::string cond;
    for (size_t k = 0; k < key.size(); ++k) {
      if (!key_cols[k] || !def.has_key())
        return Store::lookup(def, key, fn);  // reports the key mismatch
      cond += (k ? " AND " : "") + qi(key_cols[k]->name) + " = ?" + std::to_string(k + 1);
    }
    Stmt st = prepare(select_sql(def) + " WHERE " + cond);
    for (size_t k = 0; k < key.size(); ++k)
      bind(st.get(), int(k + 1), *key_cols[k], Datum::of(key[k]));
    bool found = false;
    read_rows(st.get(), def, [&](const Row& r) {
      found = true;
      fn(r);
    });
    return found;
  }

  uint64_t count(const TableDef& def) const override {
    return uint64_t(query_int("SELECT count(*) FROM " + qi(name_of(def))));
  }

 private:
  std::string select_sql(const TableDef& def) const {
    std::string cols;
    for (const auto& c : def.columns) cols += (cols.empty() ? "" : ", ") + qi(c.name);
    return "SELECT " + (cols.empty() ? std::string("NULL") : cols) + " FROM " + qi(name_of(def));
  }

  // Steps `st` and calls `fn` with each row in PostgreSQL's text form.
  void read_rows(sqlite3_stmt* st, const TableDef& def, const std::function<void(const Row&)>& fn) const {
    std::string buf;
    std::vector<std::pair<size_t, size_t>> spans;
    std::vector<bool> null(def.columns.size());
    Row row;
    for (;;) {
      int rc = sqlite3_step(st);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) fail("reading " + def.qualified());
      buf.clear();
      spans.clear();
      for (size_t i = 0; i < def.columns.size(); ++i) {
        size_t start = buf.size();
        null[i] = !column_text(st, int(i), def.columns[i], buf);
        spans.push_back({start, buf.size() - start});
      }
      row.assign(def.columns.size(), Datum::null());
      for (size_t i = 0; i < def.columns.size(); ++i)
        if (!null[i]) row[i] = Datum::of(std::string_view(buf).substr(spans[i].first, spans[i].second));
      fn(row);
    }
  }


  void fsync_path(const std::string& p, int flags) const {
    int fd = ::open(p.c_str(), flags | O_CLOEXEC);
    bool ok = fd >= 0 && ::fsync(fd) == 0;
    int err = errno;
    if (fd >= 0) ::close(fd);
    if (!ok) throw Error(ErrorCategory::kStore, "store " + path_ + ": cannot fsync " + p + ": " + std::strerror(err));
  }

  // Opens the file aside (creating it, or an existing one) and writes there from now on;
  // false when an existing one cannot be opened.
  bool open_aside(const std::string& bulk, bool create) {
    Db db;
    int rc = open_db(bulk, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0), db);
    if (rc != SQLITE_OK) {
      if (!create) return false;
      throw Error(ErrorCategory::kStore, "cannot create " + bulk + ": " + open_error(db, rc));
    }
    stmts_.clear();
    main_db_ = std::move(db_);
    db_ = std::move(db);
    return true;
  }
  // Back to the store file, the file aside closed (and left as it is).
  void close_aside() noexcept {
    stmts_.clear();
    if (in_txn_) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    in_txn_ = false;
    db_ = std::move(main_db_);
  }
  // Whether a copy aside (its state `aside`) is the one this store's state names.
  static bool same_copy(const StoreState& aside, const StoreState& main) {
    return aside.phase == StoreState::Phase::kCopying && aside.system_id == main.system_id &&
           aside.database == main.database && aside.slot == main.slot &&
           aside.consistent_point == main.consistent_point && !main.slot.empty();
  }
  // An interrupted copy's tables: those whose copy point was committed stay, the others go.
  void drop_unfinished_tables() {
    begin();
    for (const TableDef& t : std::vector<TableDef>(pending_tables_))
      if (t.awaiting_copy()) drop_table(t);
    commit();
  }

  // Switches the store file to rollback-journal mode; false when another process has it
  // open in WAL mode (SQLite then keeps WAL mode).
  // (No busy wait: the caller decides what to do when it cannot.)
  bool leave_wal_mode() { return journal_mode_to(db_.get(), "delete"); }
  bool swap_main_leaves_wal() { return journal_mode_to(main_db_.get(), "delete"); }
  static bool journal_mode_to(sqlite3* db, const std::string& mode) {
    std::string sql = "PRAGMA journal_mode=" + mode;
    sqlite3_busy_timeout(db, 0);
    sqlite3_stmt* raw = nullptr;
    bool ok = sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) == SQLITE_OK;
    Stmt st(raw);
    if (ok) ok = sqlite3_step(st.get()) == SQLITE_ROW;
    const char* now = ok ? reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0)) : nullptr;
    ok = now && mode == now;
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    return ok;
  }

  void apply_wal_settings() {
    // A store whose initial copy another process is building aside stays in rollback mode
    // (see begin_bulk_load); every other writable store is in WAL mode.
    std::error_code ec;
    if (!read_only_ && !std::filesystem::exists(bulk_path_of(path_), ec))
      exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA cache_size=-32768");  // 32 MB: memory stays bounded
    // Checkpoint the WAL every ~64 MB rather than every 4 MB: each checkpoint fsyncs the
    // database file, and a busy stream commits often.
    if (!read_only_) exec("PRAGMA wal_autocheckpoint=8192");
  }

  // Opens PATH again after the bulk load (the new file, or the old one if the rename
  // failed), and takes the one-writer lock on what is now there.
  void reopen_main() {
    main_db_.reset();
    int rc = open_db(path_, SQLITE_OPEN_READWRITE, db_);
    if (rc != SQLITE_OK)
      throw Error(ErrorCategory::kStore, "cannot open store " + path_ + ": " + open_error(db_, rc));
    apply_wal_settings();
    settings_applied_ = false;
    int fd = lock_writer(path_);
    if (lock_fd_ >= 0) ::close(lock_fd_);  // the old file's
    lock_fd_ = fd;
    load();
  }

  [[noreturn]] void fail(const std::string& what) const {
    int code = sqlite3_extended_errcode(db_.get());
    std::string msg = sqlite3_errmsg(db_.get());
    if ((code & 0xff) == SQLITE_FULL) msg = "disk full (" + msg + ")";
    if ((code & 0xff) == SQLITE_READONLY) msg = "store is read-only (" + msg + ")";
    if ((code & 0xff) == SQLITE_NOTADB || (code & 0xff) == SQLITE_CORRUPT)
      msg = "not a SQLite database or corrupt (" + msg + ")";
    throw Error(ErrorCategory::kStore, "store " + path_ + ": " + what + ": " + msg);
  }

  void exec(const std::string& sql) const {
    char* err = nullptr;
    if (sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      if (err) sqlite3_free(err);
      fail(sql.substr(0, sql.find(' ')));
    }
  }

  Stmt prepare(const std::string& sql) const {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql.c_str(), int(sql.size()), &st, nullptr) != SQLITE_OK)
      fail("preparing statement");
    return Stmt(st);
  }

  void step_done(sqlite3_stmt* st) const {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) fail("writing");
  }

  int64_t query_int(const std::string& sql) const {
    Stmt st = prepare(sql);
    int rc = sqlite3_step(st.get());
    if (rc != SQLITE_ROW) fail("reading");
    return sqlite3_column_int64(st.get(), 0);
  }

  template <class MakeSql>
  sqlite3_stmt* statement(const TableDef& def, const std::string& kind, MakeSql make) {
    auto key = std::to_string(def.id) + ":" + kind;
    auto it = stmts_.find(key);
    if (it == stmts_.end()) it = stmts_.emplace(key, prepare(make())).first;
    return it->second.get();
  }

  void forget_statements(uint32_t id) {
    std::string prefix = std::to_string(id) + ":";
    std::erase_if(stmts_, [&](const auto& kv) { return kv.first.rfind(prefix, 0) == 0; });
    stmts_.forget_apply(id);
  }

  ApplyStatements& apply_statements(const TableDef& def) { return stmts_.apply(def); }

  // The stored table `def` names (by id), as this transaction sees it (or as last
  // committed, outside one). Its sqlite_name is the only name the store uses for it.
  void require_txn(const char* op) const {
    if (!in_txn_)
      throw Error(ErrorCategory::kInternal, std::string(op) + "() outside a transaction");
  }

  const TableDef& table_of(const TableDef& def) const {
    const std::vector<TableDef>& list = in_txn_ ? pending_tables_ : tables_;
    for (const auto& t : list)
      if (t.id == def.id) return t;
    throw Error(ErrorCategory::kInternal,
                "store " + path_ + ": table " + def.qualified() + " (id " + std::to_string(def.id) +
                    ") is not in the store");
  }
  const std::string& name_of(const TableDef& def) const { return table_of(def).sqlite_name; }

  // Whether no table, index or view in the file has `name` (compared as SQLite compares
  // names: ignoring ASCII case) and SQLite or pgseed does not reserve it.
  bool name_free(const std::string& name) const {
    if (reserved_name(name)) return false;
    Stmt st = prepare("SELECT count(*) FROM sqlite_master WHERE name = ?1 COLLATE NOCASE");
    sqlite3_bind_text(st.get(), 1, name.data(), int(name.size()), SQLITE_STATIC);
    if (sqlite3_step(st.get()) != SQLITE_ROW) fail("reading the schema");
    return sqlite3_column_int64(st.get(), 0) == 0;
  }

  // A new table's SQLite name: the rule in sqlite_store.h.
  std::string choose_name(const TableDef& def) const {
    std::string base = readable_name(def.schema, def.name);
    if (reserved_name(base)) base = "~" + base;
    if (name_free(base)) return base;
    for (uint64_t n = 2;; ++n) {
      std::string candidate = base + "~" + std::to_string(n);
      if (name_free(candidate)) return candidate;
    }
  }

  std::string create_sql(const TableDef& def, const std::string& lname) const {
    std::string sql = "CREATE TABLE " + qi(lname) + " (";
    std::vector<std::pair<int, std::string>> keys;
    for (size_t i = 0; i < def.columns.size(); ++i) {
      const auto& c = def.columns[i];
      if (i) sql += ", ";
      sql += qi(c.name);
      if (*declared_type(c)) sql += std::string(" ") + declared_type(c);
      if (c.key_position > 0) {
        sql += " NOT NULL";
        keys.push_back({c.key_position, qi(c.name)});
      }
    }
    // SQLite has no table without columns (PostgreSQL has: CREATE TABLE t (), or what
    // DROP ... CASCADE of a table's only column's type leaves): a placeholder column that
    // is always NULL stands in; the table's rows are its rows.
    if (def.columns.empty()) sql += qi(kNoColumns) + " INTEGER";
    std::sort(keys.begin(), keys.end());
    if (!keys.empty()) {
      sql += ", PRIMARY KEY (";
      for (size_t i = 0; i < keys.size(); ++i) sql += (i ? ", " : "") + keys[i].second;
      sql += ")";
    }
    return sql + ")";
  }

  std::string insert_sql(const TableDef& def, const char* verb) const {
    if (def.columns.empty()) return std::string(verb) + " INTO " + qi(name_of(def)) + " DEFAULT VALUES";
    std::string cols, params;
    for (size_t i = 0; i < def.columns.size(); ++i) {
      cols += (i ? ", " : "") + qi(def.columns[i].name);
      params += (i ? ", ?" : "?");
    }
    return std::string(verb) + " INTO " + qi(name_of(def)) + " (" + cols + ") VALUES (" +
           params + ")";
  }

  // WHERE clause matching one row: by key, or (no key) the first row equal on every
  // column; `IS` makes NULLs compare equal.
  std::string match_clause(const TableDef& def, size_t first_param) const {
    std::string cond;
    bool keyed = def.has_key();
    for (size_t i = 0; i < def.columns.size(); ++i) {
      const auto& c = def.columns[i];
      if (keyed && c.key_position == 0) continue;
      if (!cond.empty()) cond += " AND ";
      cond += qi(c.name) + (keyed ? " = ?" : " IS ?") + std::to_string(first_param + i);
    }
    if (keyed) return " WHERE " + cond;
    return " WHERE rowid = (SELECT rowid FROM " + qi(name_of(def)) +
           (cond.empty() ? "" : " WHERE " + cond) + " LIMIT 1)";
  }

  void bind_match(sqlite3_stmt* st, const TableDef& def, std::span<const Datum> row, int first) {
    bool keyed = def.has_key();
    for (size_t i = 0; i < def.columns.size(); ++i) {
      if (keyed && def.columns[i].key_position == 0) continue;
      Datum d = i < row.size() ? row[i] : Datum::null();
      bind(st, first + int(i), def.columns[i], d);
    }
  }

  static void check_width(const TableDef& def, std::span<const Datum> row) {
    if (row.size() != def.columns.size())
      throw Error(ErrorCategory::kDecode, "row for " + def.qualified() + " has " +
                                              std::to_string(row.size()) + " values, expected " +
                                              std::to_string(def.columns.size()));
  }

  void bind_row(sqlite3_stmt* st, const TableDef& def, std::span<const Datum> row, int first) {
    check_width(def, row);
    for (size_t i = 0; i < row.size(); ++i)
      if (row[i].kind != Datum::Kind::kUnchanged) bind(st, first + int(i), def.columns[i], row[i]);
  }

  void bind(sqlite3_stmt* st, int idx, const ColumnDef& col, const Datum& d) const {
    if (d.kind != Datum::Kind::kText) {
      sqlite3_bind_null(st, idx);
      return;
    }
    std::string_view t = d.text;
    switch (col.storage) {
      case StorageClass::kInteger: {
        int64_t v;
        if (parse_int64(t, v)) return void(sqlite3_bind_int64(st, idx, v));
        break;
      }
      case StorageClass::kBool:
        if (t == "t") return void(sqlite3_bind_int(st, idx, 1));
        if (t == "f") return void(sqlite3_bind_int(st, idx, 0));
        break;
      case StorageClass::kBytes: {
        scratch_ = decode_bytea_hex(t);
        sqlite3_bind_blob64(st, idx, scratch_.data(), scratch_.size(), SQLITE_TRANSIENT);
        return;
      }
      case StorageClass::kReal:
      case StorageClass::kText: {
        // In the file's format: a lookup in a format-1 store (read as it is) must bind
        // what format 1 stored.
        SqliteValue v = sqlite_value(col, t, format_);
        if (v.is_real) return void(sqlite3_bind_double(st, idx, v.real));
        t = v.text;
        break;
      }
    }
    // SQLITE_STATIC: the text outlives the statement's next step (it lives in the row
    // batch or the decoded message), and every parameter is bound again before each step.
    sqlite3_bind_text64(st, idx, t.data(), t.size(), SQLITE_STATIC, SQLITE_UTF8);
  }

  // Appends a column's PostgreSQL text form to `out`; false for NULL.
  static bool column_text(sqlite3_stmt* st, int i, const ColumnDef& col, std::string& out) {
    switch (sqlite3_column_type(st, i)) {
      case SQLITE_NULL: return false;
      case SQLITE_INTEGER: {
        int64_t v = sqlite3_column_int64(st, i);
        if (col.storage == StorageClass::kBool) out += v ? "t" : "f";
        else if (auto scale = numeric_real_scale(col.base_type_oid, col.type_mod))
          append_scaled_numeric(out, double(v), *scale);
        else out += std::to_string(v);
        return true;
      }
      case SQLITE_FLOAT: {
        double v = sqlite3_column_double(st, i);
        if (auto scale = numeric_real_scale(col.base_type_oid, col.type_mod))
          append_scaled_numeric(out, v, *scale);
        else
          out += col.base_type_oid == kFloat4Oid ? format_float4(float(v)) : format_float8(v);
        return true;
      }
      case SQLITE_BLOB: {
        const char* p = static_cast<const char*>(sqlite3_column_blob(st, i));
        append_bytea_hex(out, std::string_view(p ? p : "", size_t(sqlite3_column_bytes(st, i))));
        return true;
      }
      default: {
        const char* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
        std::string_view text(p ? p : "", size_t(sqlite3_column_bytes(st, i)));
        out.append(text);
        // Format 2 keeps a UTC timestamptz without its "+00"; format 1's "+00" form reads as is.
        if (col.base_type_oid == kTimestamptzOid && lacks_utc_suffix(text)) out += "+00";
        return true;
      }
    }
  }

  void create_metadata() {
    exec("BEGIN IMMEDIATE");
    exec("CREATE TABLE _pgseed_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    exec("CREATE TABLE _pgseed_tables (id INTEGER PRIMARY KEY, schema_name TEXT NOT NULL, "
         "table_name TEXT NOT NULL, sqlite_name TEXT NOT NULL, source_oid INTEGER NOT NULL, "
         "snapshot_lsn TEXT NOT NULL, relfilenode INTEGER NOT NULL DEFAULT 0)");
    exec("CREATE TABLE _pgseed_columns (table_id INTEGER NOT NULL, position INTEGER NOT NULL, "
         "name TEXT NOT NULL, type_name TEXT NOT NULL, type_oid INTEGER NOT NULL, "
         "base_type_oid INTEGER NOT NULL, storage TEXT NOT NULL, key_position INTEGER NOT NULL, "
         "attnum INTEGER NOT NULL DEFAULT 0, type_mod INTEGER NOT NULL DEFAULT -1, "
         "PRIMARY KEY (table_id, position))");
    exec("INSERT INTO _pgseed_state VALUES ('format', '" + std::string(kFormat) + "')");
    exec("COMMIT");
  }

  // Stores written before pgseed tracked columns by identity lack attnum and type_mod:
  // add them (0 and -1: unknown, compared by name and type only). A read-only store is
  // read as it is.
  void upgrade_metadata() {
    has_attnum_ =
        query_int("SELECT count(*) FROM pragma_table_info('_pgseed_columns') WHERE name = 'attnum'") > 0;
    if (has_attnum_ || read_only_) return;
    exec("BEGIN IMMEDIATE");
    exec("ALTER TABLE _pgseed_columns ADD COLUMN attnum INTEGER NOT NULL DEFAULT 0");
    exec("ALTER TABLE _pgseed_columns ADD COLUMN type_mod INTEGER NOT NULL DEFAULT -1");
    exec("ALTER TABLE _pgseed_tables ADD COLUMN relfilenode INTEGER NOT NULL DEFAULT 0");
    exec("COMMIT");
    has_attnum_ = true;
  }

  // Format 1 -> 2 (sqlite_values.h), in one transaction: every value of a numeric(p<=15,s),
  // timestamptz, float4 or float8 column becomes what format 2 binds for its text (each
  // format-1 value is PostgreSQL's text, or a REAL already), by the same function bind()
  // uses (so that key lookups find the rows). A table with such a numeric column is
  // rebuilt under a reserved name (SQLite cannot change a column's declared type in place)
  // and takes its recorded name back; the others are updated in place.
  void upgrade_format(const LogSink& log) {
    // The conversion function exists only for the upgrade's statements.
    struct Unregister {
      sqlite3* db;
      ~Unregister() {
        sqlite3_create_function_v2(db, "_pgseed_format2", 2, SQLITE_UTF8, nullptr, nullptr,
                                   nullptr, nullptr, nullptr);
      }
    } unregister{db_.get()};
    exec("BEGIN IMMEDIATE");
    size_t rewritten = 0;
    try {
      load();  // as committed now, under the write lock
      if (format_ == kSqliteFormatNative) return void(exec("COMMIT"));
      format_ = kSqliteFormatNative;  // create_sql() and bind() from here on
      // _pgseed_format2(value, column index): the format-2 value of a format-1 one.
      struct Ctx {
        const TableDef* def = nullptr;
      } ctx;
      auto fn = [](sqlite3_context* c, int, sqlite3_value** argv) {
        const TableDef& def = *static_cast<Ctx*>(sqlite3_user_data(c))->def;
        const ColumnDef& col = def.columns.at(size_t(sqlite3_value_int64(argv[1])));
        if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) return sqlite3_result_value(c, argv[0]);
        std::string_view text(reinterpret_cast<const char*>(sqlite3_value_text(argv[0])),
                              size_t(sqlite3_value_bytes(argv[0])));
        SqliteValue v = sqlite_value(col, text, kSqliteFormatNative);
        if (v.is_real) return sqlite3_result_double(c, v.real);
        sqlite3_result_text64(c, v.text.data(), v.text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      };
      if (sqlite3_create_function_v2(db_.get(), "_pgseed_format2", 2, SQLITE_UTF8, &ctx, fn,
                                     nullptr, nullptr, nullptr) != SQLITE_OK)
        fail("registering the format upgrade");
      for (const TableDef& def : tables_) {
        bool rebuild = false, changes = false;
        std::string cols, sel, set;
        for (size_t i = 0; i < def.columns.size(); ++i) {
          const ColumnDef& c = def.columns[i];
          bool numeric = numeric_real_scale(c.base_type_oid, c.type_mod).has_value();
          bool convert = numeric || c.base_type_oid == kTimestamptzOid ||
                         c.storage == StorageClass::kReal;
          rebuild |= numeric;
          changes |= convert;
          std::string value =
              convert ? "_pgseed_format2(" + qi(c.name) + ", " + std::to_string(i) + ")" : qi(c.name);
          cols += (i ? ", " : "") + qi(c.name);
          sel += (i ? ", " : "") + value;
          if (convert) set += (set.empty() ? "" : ", ") + qi(c.name) + " = " + value;
        }
        if (!changes) continue;
        ctx.def = &def;
        if (rebuild) {
          std::string tmp = "_pgseed_rebuild_" + std::to_string(def.id);
          exec(create_sql(def, tmp));
          exec("INSERT INTO " + qi(tmp) + " (" + cols + ") SELECT " + sel + " FROM " +
               qi(def.sqlite_name));
          exec("DROP TABLE " + qi(def.sqlite_name));
          exec("ALTER TABLE " + qi(tmp) + " RENAME TO " + qi(def.sqlite_name));
        } else {
          exec("UPDATE " + qi(def.sqlite_name) + " SET " + set);
        }
        ++rewritten;
      }
      exec("UPDATE _pgseed_state SET value = '" + std::string(kFormat) + "' WHERE key = 'format'");
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      stmts_.clear();
      load();  // format 1 again, as the file still is
      throw;
    }
    stmts_.clear();
    load();
    if (log)
      log(LogLevel::kInfo, "store " + path_ + ": upgraded from format " + kFormat1 + " to " +
                               kFormat + " (numeric(p<=15,s) as REAL, timestamptz without +00, "
                               "±Infinity as REAL); " + std::to_string(rewritten) + " of " +
                               std::to_string(tables_.size()) + " tables rewritten");
  }

  static const char* storage_name(StorageClass s) {
    switch (s) {
      case StorageClass::kInteger: return "integer";
      case StorageClass::kReal: return "real";
      case StorageClass::kBool: return "bool";
      case StorageClass::kBytes: return "bytes";
      case StorageClass::kText: return "text";
    }
    return "text";
  }

  void write_table_meta(const TableDef& def) {
    Stmt t = prepare(
        "INSERT INTO _pgseed_tables (id, schema_name, table_name, sqlite_name, source_oid, "
        "snapshot_lsn, relfilenode) VALUES (?, ?, ?, ?, ?, ?, ?)");
    sqlite3_bind_int64(t.get(), 1, def.id);
    sqlite3_bind_text(t.get(), 2, def.schema.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(t.get(), 3, def.name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(t.get(), 4, def.sqlite_name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(t.get(), 5, def.source_oid);
    std::string snap = def.snapshot_lsn.str();
    sqlite3_bind_text(t.get(), 6, snap.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(t.get(), 7, def.relfilenode);
    step_done(t.get());
    Stmt c = prepare(
        "INSERT INTO _pgseed_columns (table_id, position, name, type_name, type_oid, "
        "base_type_oid, storage, key_position, attnum, type_mod) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (size_t i = 0; i < def.columns.size(); ++i) {
      const auto& col = def.columns[i];
      sqlite3_bind_int64(c.get(), 1, def.id);
      sqlite3_bind_int64(c.get(), 2, int64_t(i + 1));
      sqlite3_bind_text(c.get(), 3, col.name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(c.get(), 4, col.type_name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(c.get(), 5, col.type_oid);
      sqlite3_bind_int64(c.get(), 6, col.base_type_oid);
      sqlite3_bind_text(c.get(), 7, storage_name(col.storage), -1, SQLITE_STATIC);
      sqlite3_bind_int64(c.get(), 8, col.key_position);
      sqlite3_bind_int64(c.get(), 9, col.attnum);
      sqlite3_bind_int64(c.get(), 10, col.type_mod);
      step_done(c.get());
    }
  }

  void load() {
    std::map<std::string, std::string> kv;
    {
      Stmt st = prepare("SELECT key, value FROM _pgseed_state");
      while (sqlite3_step(st.get()) == SQLITE_ROW)
        kv[reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0))] =
            reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 1));
    }
    if (kv["format"] == kFormat) format_ = kSqliteFormatNative;
    else if (kv["format"] == kFormat1) format_ = kSqliteFormatText;
    else
      throw Error(ErrorCategory::kStore, "store " + path_ + " has format '" + kv["format"] +
                                             "', this pgseed reads '" + kFormat1 + "' and '" +
                                             kFormat + "' (a newer pgseed wrote it?)");
    StoreState s;
    const std::string& phase = kv["phase"];
    s.phase = phase == "copying"     ? StoreState::Phase::kCopying
              : phase == "streaming" ? StoreState::Phase::kStreaming
                                     : StoreState::Phase::kEmpty;
    s.system_id = kv["system_id"];
    s.database = kv["database"];
    s.slot = kv["slot"];
    s.publication = kv["publication"];
    s.created_publication = kv["created_publication"] == "true";
    if (!kv["consistent_point"].empty()) s.consistent_point = Lsn::parse(kv["consistent_point"]);
    if (!kv["applied_lsn"].empty()) s.applied_lsn = Lsn::parse(kv["applied_lsn"]);
    s.last_commit_time = kv["last_commit_time"];
    state_ = s;

    tables_.clear();
    Stmt t = prepare(std::string("SELECT id, schema_name, table_name, source_oid, snapshot_lsn, ") +
                     (has_attnum_ ? "relfilenode" : "0") + ", sqlite_name FROM _pgseed_tables ORDER BY id");
    Stmt c = prepare(std::string("SELECT name, type_name, type_oid, base_type_oid, storage, key_position, ") +
                     (has_attnum_ ? "attnum, type_mod" : "0, -1") +
                     " FROM _pgseed_columns WHERE table_id = ? ORDER BY position");
    while (sqlite3_step(t.get()) == SQLITE_ROW) {
      TableDef def;
      def.id = uint32_t(sqlite3_column_int64(t.get(), 0));
      def.schema = reinterpret_cast<const char*>(sqlite3_column_text(t.get(), 1));
      def.name = reinterpret_cast<const char*>(sqlite3_column_text(t.get(), 2));
      def.source_oid = uint32_t(sqlite3_column_int64(t.get(), 3));
      def.snapshot_lsn = Lsn::parse(reinterpret_cast<const char*>(sqlite3_column_text(t.get(), 4)));
      def.relfilenode = uint32_t(sqlite3_column_int64(t.get(), 5));
      def.sqlite_name = reinterpret_cast<const char*>(sqlite3_column_text(t.get(), 6));
      sqlite3_bind_int64(c.get(), 1, def.id);
      while (sqlite3_step(c.get()) == SQLITE_ROW) {
        ColumnDef col;
        col.name = reinterpret_cast<const char*>(sqlite3_column_text(c.get(), 0));
        col.type_name = reinterpret_cast<const char*>(sqlite3_column_text(c.get(), 1));
        col.type_oid = uint32_t(sqlite3_column_int64(c.get(), 2));
        col.base_type_oid = uint32_t(sqlite3_column_int64(c.get(), 3));
        col.storage = storage_class_for_type(col.base_type_oid);
        col.key_position = int(sqlite3_column_int64(c.get(), 5));
        col.attnum = int(sqlite3_column_int64(c.get(), 6));
        col.type_mod = int32_t(sqlite3_column_int64(c.get(), 7));
        def.columns.push_back(std::move(col));
      }
      sqlite3_reset(c.get());
      tables_.push_back(std::move(def));
    }
  }

  std::string path_;
  Db db_;
  Db main_db_;  // set while a bulk load writes db_ aside
  bool read_only_ = false;
  bool has_attnum_ = true;  // _pgseed_columns has attnum and type_mod
  int format_ = kSqliteFormatNative;  // of the file db_ has open (set by load())
  bool bulk_settings_ = false;     // the pragmas last applied were the copy's
  bool settings_applied_ = false;
  int lock_fd_ = -1;
  bool in_txn_ = false;
  StoreState state_, pending_state_;
  std::vector<TableDef> tables_, pending_tables_;
  // SQLite names of the tables dropped in this transaction, by PostgreSQL (schema, name):
  // a table created again under that name takes its old name back (create_table).
  std::map<std::pair<std::string, std::string>, std::string> released_;
  StatementCache stmts_;
  std::string mask_;  // update(): reused, so that no change allocates it
  mutable std::string scratch_;  // decoded bytea, bound SQLITE_TRANSIENT
};

}  // namespace

std::unique_ptr<Store> open_sqlite_store(const std::string& path, bool must_exist) {
  return std::make_unique<SqliteStore>(path, must_exist);
}

void remove_sqlite_side_files(const std::string& path) {
  remove_files(path, {"-wal", "-shm", "-journal"});
  remove_bulk_copy(path);
}

}  // namespace pgseed
