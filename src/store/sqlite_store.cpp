// SqliteStore: opening a store file, transactions, tables and state (see
// sqlite/sqlite_store_impl.h for the other parts).
#include "store/sqlite_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>

#include "pgseed/error.h"
#include "store/sqlite_values.h"

#include "store/sqlite/sqlite_store_impl.h"

namespace pgseed::sqlite {

SqliteStore::SqliteStore(std::string path, bool must_exist) : path_(std::move(path)) {
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
    // An empty file is a store only for a command that may create one. Any other (status,
    // dump, a reader) must not set it up: another process may be creating it this moment,
    // and a reader's page size, WAL switch and metadata raced that process's own (it failed
    // with "database is locked"). As an empty RocksDB directory is, it does not exist yet.
    if (!has_meta && must_exist)
      throw Error(ErrorCategory::kStore, "store " + path_ + " does not exist (empty file)");
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

SqliteStore::~SqliteStore() {
  if (main_db_) abort_bulk_load();
  release();
  stmts_.clear();
  if (in_txn_) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  db_.reset();
  // Only now: closing any descriptor of the file drops the process's POSIX locks,
  // which SQLite relies on.
  if (lock_fd_ >= 0) close(lock_fd_);
}

StoreState SqliteStore::state() const {
  const_cast<SqliteStore*>(this)->reload_if_changed();
  return state_;
}

std::vector<TableDef> SqliteStore::tables() const {
  const_cast<SqliteStore*>(this)->reload_if_changed();
  return tables_;
}

uint64_t SqliteStore::tables_version() const {
  const_cast<SqliteStore*>(this)->reload_if_changed();
  return tables_version_;
}

void SqliteStore::refresh() {
  if (in_txn_ || main_db_) return;  // a writer's own transaction or bulk load
  release();
  exec("BEGIN");
  view_ = true;
  query_int("SELECT count(*) FROM _pgseed_state");  // takes the snapshot now
}

void SqliteStore::release() noexcept {
  if (!view_) return;
  view_ = false;
  sqlite3_exec(db_.get(), "COMMIT", nullptr, nullptr, nullptr);
}

void SqliteStore::claim_writer(const LogSink& log) {
  if (read_only_) throw Error(ErrorCategory::kStore, "store " + path_ + " is read-only");
  if (lock_fd_ < 0) lock_fd_ = lock_writer(path_);
  // Only the one writer rewrites an older format: no other pgseed writes meanwhile.
  if (format_ < kSqliteFormatNative && !in_txn_ && !main_db_) upgrade_format(log);
}

bool SqliteStore::prefers_long_transactions() const { return true; }

void SqliteStore::begin() {
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

void SqliteStore::commit() {
  exec("COMMIT");
  in_txn_ = false;
  state_ = pending_state_;
  tables_ = pending_tables_;
  released_.clear();
}

void SqliteStore::rollback() {
  if (!in_txn_) return;
  in_txn_ = false;
  released_.clear();
  stmts_.clear();  // statements may refer to tables the rollback removed
  exec("ROLLBACK");
}

void SqliteStore::write_state(const StoreState& s) {
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
  put("timeline", std::to_string(s.timeline));
  pending_state_ = s;
}

void SqliteStore::reset() {
  require_txn("reset");
  if (!main_db_) remove_bulk_copy(path_);  // an interrupted copy is given up too
  stmts_.clear();
  for (const auto& t : pending_tables_) exec("DROP TABLE IF EXISTS " + qi(t.sqlite_name));
  exec("DELETE FROM _pgseed_tables");
  exec("DELETE FROM _pgseed_columns");
  pending_tables_.clear();
  write_state(StoreState{});
}

void SqliteStore::create_table(TableDef& def) {
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

void SqliteStore::drop_table(const TableDef& def) {
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

void SqliteStore::alter_table(const TableDef& from, const TableDef& to, std::span<const Datum> fill) {
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

void SqliteStore::set_sync_state(const TableDef& def) {
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

[[noreturn]] void SqliteStore::fail(const std::string& what) const {
  int code = sqlite3_extended_errcode(db_.get());
  std::string msg = sqlite3_errmsg(db_.get());
  if ((code & 0xff) == SQLITE_FULL) msg = "disk full (" + msg + ")";
  if ((code & 0xff) == SQLITE_READONLY) msg = "store is read-only (" + msg + ")";
  if ((code & 0xff) == SQLITE_NOTADB || (code & 0xff) == SQLITE_CORRUPT)
    msg = "not a SQLite database or corrupt (" + msg + ")";
  throw Error(ErrorCategory::kStore, "store " + path_ + ": " + what + ": " + msg);
}

void SqliteStore::exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    if (err) sqlite3_free(err);
    fail(sql.substr(0, sql.find(' ')));
  }
}

Stmt SqliteStore::prepare(const std::string& sql) const {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_.get(), sql.c_str(), int(sql.size()), &st, nullptr) != SQLITE_OK)
    fail("preparing statement");
  return Stmt(st);
}

void SqliteStore::step_done(sqlite3_stmt* st) const {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) fail("writing");
}

int64_t SqliteStore::query_int(const std::string& sql) const {
  Stmt st = prepare(sql);
  int rc = sqlite3_step(st.get());
  if (rc != SQLITE_ROW) fail("reading");
  return sqlite3_column_int64(st.get(), 0);
}

void SqliteStore::forget_statements(uint32_t id) {
  std::string prefix = std::to_string(id) + ":";
  std::erase_if(stmts_, [&](const auto& kv) { return kv.first.rfind(prefix, 0) == 0; });
  stmts_.forget_apply(id);
}

ApplyStatements& SqliteStore::apply_statements(const TableDef& def) { return stmts_.apply(def); }

void SqliteStore::require_txn(const char* op) const {
  if (!in_txn_)
    throw Error(ErrorCategory::kInternal, std::string(op) + "() outside a transaction");
}

const TableDef& SqliteStore::table_of(const TableDef& def) const {
  const std::vector<TableDef>& list = in_txn_ ? pending_tables_ : tables_;
  for (const auto& t : list)
    if (t.id == def.id) return t;
  throw Error(ErrorCategory::kInternal,
              "store " + path_ + ": table " + def.qualified() + " (id " + std::to_string(def.id) +
                  ") is not in the store");
}

const std::string& SqliteStore::name_of(const TableDef& def) const { return table_of(def).sqlite_name; }

}  // namespace pgseed::sqlite

namespace pgseed {

std::unique_ptr<Store> open_sqlite_store(const std::string& path, bool must_exist) {
  return std::make_unique<sqlite::SqliteStore>(path, must_exist);
}

void remove_sqlite_side_files(const std::string& path) {
  sqlite::remove_files(path, {"-wal", "-shm", "-journal"});
  sqlite::remove_bulk_copy(path);
}

}  // namespace pgseed
