// SqliteStore: the metadata tables (_pgseed_state, _pgseed_tables, _pgseed_columns), format
// upgrades, and the SQLite names of tables.
#include "store/sqlite/sqlite_store_impl.h"

#include <sqlite3.h>

#include <cstdlib>
#include <map>
#include <string_view>

#include "pgseed/error.h"
#include "store/sqlite_values.h"

namespace pgseed::sqlite {

bool SqliteStore::name_free(const std::string& name) const {
  if (reserved_name(name)) return false;
  Stmt st = prepare("SELECT count(*) FROM sqlite_master WHERE name = ?1 COLLATE NOCASE");
  sqlite3_bind_text(st.get(), 1, name.data(), int(name.size()), SQLITE_STATIC);
  if (sqlite3_step(st.get()) != SQLITE_ROW) fail("reading the schema");
  return sqlite3_column_int64(st.get(), 0) == 0;
}

std::string SqliteStore::choose_name(const TableDef& def) const {
  std::string base = readable_name(def.schema, def.name);
  if (reserved_name(base)) base = "~" + base;
  if (name_free(base)) return base;
  for (uint64_t n = 2;; ++n) {
    std::string candidate = base + "~" + std::to_string(n);
    if (name_free(candidate)) return candidate;
  }
}

std::string SqliteStore::create_sql(const TableDef& def, const std::string& lname) const {
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

void SqliteStore::create_metadata() {
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

void SqliteStore::upgrade_metadata() {
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

void SqliteStore::upgrade_format(const LogSink& log) {
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

const char* SqliteStore::storage_name(StorageClass s) {
  switch (s) {
    case StorageClass::kInteger: return "integer";
    case StorageClass::kReal: return "real";
    case StorageClass::kBool: return "bool";
    case StorageClass::kBytes: return "bytes";
    case StorageClass::kText: return "text";
  }
  return "text";
}

void SqliteStore::write_table_meta(const TableDef& def) {
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

void SqliteStore::reload_if_changed() {
  if (in_txn_) return;
  if (query_int("PRAGMA data_version") == data_version_) return;
  load();
}

bool SqliteStore::same_tables(const std::vector<TableDef>& a, const std::vector<TableDef>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const TableDef &x = a[i], &y = b[i];
    if (x.id != y.id || x.schema != y.schema || x.name != y.name ||
        x.sqlite_name != y.sqlite_name || x.snapshot_lsn != y.snapshot_lsn ||
        x.relfilenode != y.relfilenode || x.source_oid != y.source_oid ||
        x.columns.size() != y.columns.size() || !x.same_columns(y))
      return false;
  }
  return true;
}

void SqliteStore::load() {
  data_version_ = query_int("PRAGMA data_version");
  std::vector<TableDef> before = std::move(tables_);
  load_metadata();
  if (!same_tables(before, tables_)) {
    ++tables_version_;
    for (const auto& t : before) forget_statements(t.id);
  }
}

void SqliteStore::load_metadata() {
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
  // Absent in a store written by a pgseed before it: 0, unknown.
  if (!kv["timeline"].empty()) s.timeline = uint32_t(std::strtoul(kv["timeline"].c_str(), nullptr, 10));
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

}  // namespace pgseed::sqlite
