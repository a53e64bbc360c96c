// The SQLite store's small parts: handles (Db, Stmt), identifier quoting, table names, the
// writer lock, side files, declared column types, and the prepared-statement cache.
#pragma once

#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>
#include <fcntl.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "pgseed/error.h"
#include "model/pg_type.h"
#include "model/table_def.h"
#include "store/sqlite_values.h"

namespace pgseed::sqlite {

// The placeholder column of a table without columns (see create_sql).
inline constexpr const char* kNoColumns = "_pgseed_no_columns";

// The store's format (sqlite_values.h): this pgseed writes format 2; it reads format 1 as
// it is and brings it to format 2 when it becomes the store's writer (claim_writer).
inline constexpr const char* kFormat = "pgseed-sqlite-2";
inline constexpr const char* kFormat1 = "pgseed-sqlite-1";

inline std::string qi(std::string_view id) {  // SQLite identifier quoting
  std::string out = "\"";
  for (char c : id) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// The table name a source table is first offered (see sqlite_store.h): what pgseed has
// always used, so that existing stores and queries keep their names.
inline std::string readable_name(const std::string& schema, const std::string& name) {
  return schema == "public" ? name : schema + "." + name;
}

// Names SQLite reserves (`sqlite_*`: CREATE TABLE refuses them) and pgseed's own metadata
// tables; both compared ignoring ASCII case, as SQLite compares names.
inline bool reserved_name(std::string_view n) {
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

inline constexpr int kBusyTimeoutMs = 10000;  // how long a statement waits for another process's lock

// Opens `path` into `db` (set also on failure: it carries the message); SQLite's code.
inline int open_db(const std::string& path, int flags, Db& db) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  db.reset(raw);
  if (rc == SQLITE_OK) sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  return rc;
}
inline std::string open_error(const Db& db, int rc) { return db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc); }

// Where the initial copy is built before it takes the store's place (see begin_bulk_load).
inline std::string bulk_path_of(const std::string& path) { return path + "-pgseed-copy"; }

inline void remove_files(const std::string& base, std::initializer_list<const char*> suffixes) {
  std::error_code ec;
  for (const char* s : suffixes) std::filesystem::remove(base + s, ec);
}
// An unfinished (or crashed) initial copy of the store at `path`.
inline void remove_bulk_copy(const std::string& path) {
  remove_files(bulk_path_of(path), {"", "-journal", "-wal", "-shm"});
}

// One writer per store: an exclusive flock on the file (independent of the fcntl locks
// SQLite takes; readers are not affected). Returns the descriptor that holds it.
inline int lock_writer(const std::string& path) {
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
inline const char* declared_type(const ColumnDef& c) {
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

}  // namespace pgseed::sqlite
