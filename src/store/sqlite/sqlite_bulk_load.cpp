// SqliteStore: the initial copy as one bulk load, built in a file aside and swapped in; the
// journal modes and settings of copying and streaming.
#include "store/sqlite/sqlite_store_impl.h"

#include <sqlite3.h>
#include <unistd.h>
#include <fcntl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "pgseed/error.h"
#include "store/sqlite_values.h"

namespace pgseed::sqlite {

void SqliteStore::begin_bulk_load() {
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

void SqliteStore::finish_bulk_load(const StoreState& final_state) {
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

void SqliteStore::abort_bulk_load() noexcept {
  if (!main_db_) return;
  close_aside();  // the file aside stays: a later begin_bulk_load() resumes it
  sqlite3_exec(db_.get(), "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
  try {
    load();
  } catch (const Error&) {  // the store file is unchanged; the caller reports its error
  }
}

void SqliteStore::fsync_path(const std::string& p, int flags) const {
  int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  bool ok = fd >= 0 && ::fsync(fd) == 0;
  int err = errno;
  if (fd >= 0) ::close(fd);
  if (!ok) throw Error(ErrorCategory::kStore, "store " + path_ + ": cannot fsync " + p + ": " + std::strerror(err));
}

bool SqliteStore::open_aside(const std::string& bulk, bool create) {
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

void SqliteStore::close_aside() noexcept {
  stmts_.clear();
  if (in_txn_) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  in_txn_ = false;
  db_ = std::move(main_db_);
}

bool SqliteStore::same_copy(const StoreState& aside, const StoreState& main) {
  return aside.phase == StoreState::Phase::kCopying && aside.system_id == main.system_id &&
         aside.database == main.database && aside.slot == main.slot &&
         aside.consistent_point == main.consistent_point && !main.slot.empty();
}

void SqliteStore::drop_unfinished_tables() {
  begin();
  for (const TableDef& t : std::vector<TableDef>(pending_tables_))
    if (t.awaiting_copy()) drop_table(t);
  commit();
}

bool SqliteStore::leave_wal_mode() { return journal_mode_to(db_.get(), "delete"); }

bool SqliteStore::swap_main_leaves_wal() { return journal_mode_to(main_db_.get(), "delete"); }

bool SqliteStore::journal_mode_to(sqlite3* db, const std::string& mode) {
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

void SqliteStore::apply_wal_settings() {
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

void SqliteStore::reopen_main() {
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

}  // namespace pgseed::sqlite
