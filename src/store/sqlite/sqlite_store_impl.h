// SqliteStore: the SQLite store (sqlite_store.h has what it stores and how). Its parts:
// sqlite_store.cpp (opening, transactions, tables), sqlite/sqlite_rows.cpp (rows: writes,
// reads, binding values), sqlite/sqlite_schema.cpp (the metadata tables, format upgrades,
// table names), sqlite/sqlite_bulk_load.cpp (the initial copy built aside, journal modes).
// A SqliteStore is used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "model/pg_type.h"
#include "model/row.h"
#include "model/table_def.h"
#include "pgseed/log.h"
#include "store/sqlite/sqlite_support.h"
#include "store/sqlite_values.h"
#include "store/store.h"

namespace pgseed::sqlite {

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, bool must_exist);
  ~SqliteStore() override;

  // Outside a transaction these re-read the metadata when another connection (a running
  // sync, in this process or another) committed since (PRAGMA data_version), so a reader
  // sees that commit and a hot path does not re-read unchanged metadata.
  StoreState state() const override;
  std::vector<TableDef> tables() const override;
  uint64_t tables_version() const override;

  // A reader's view: one read transaction (WAL mode: it sees the last commit before it
  // began, whatever the writer commits meanwhile).
  void refresh() override;
  void release() noexcept override;
  void claim_writer(const LogSink& log) override;

  // The transaction spills to the file through the bounded page cache.
  bool prefers_long_transactions() const override;
  void begin() override;
  void commit() override;
  void rollback() override;
  void write_state(const StoreState& s) override;
  void reset() override;
  void create_table(TableDef& def) override;
  void drop_table(const TableDef& def) override;
  void alter_table(const TableDef& from, const TableDef& to, std::span<const Datum> fill) override;
  void set_sync_state(const TableDef& def) override;
  void insert_batch(const TableDef& def, const RowBatch& rows) override;
  void upsert(const TableDef& def, std::span<const Datum> row) override;
  void update(const TableDef& def, std::span<const Datum> old_row,
              std::span<const Datum> new_row) override;
  void remove(const TableDef& def, std::span<const Datum> old_row) override;
  void truncate(const TableDef& def) override;

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
  void begin_bulk_load() override;
  void finish_bulk_load(const StoreState& final_state) override;
  void abort_bulk_load() noexcept override;
  void scan(const TableDef& def, const std::function<void(const Row&)>& fn) const override;
  bool lookup(const TableDef& def, std::span<const std::string> key,
              const std::function<void(const Row&)>& fn) const override;
  uint64_t count(const TableDef& def) const override;

 private:
  std::string select_sql(const TableDef& def) const;

  // Steps `st` and calls `fn` with each row in PostgreSQL's text form.
  void read_rows(sqlite3_stmt* st, const TableDef& def, const std::function<void(const Row&)>& fn) const;
  void fsync_path(const std::string& p, int flags) const;

  // Opens the file aside (creating it, or an existing one) and writes there from now on;
  // false when an existing one cannot be opened.
  bool open_aside(const std::string& bulk, bool create);

  // Back to the store file, the file aside closed (and left as it is).
  void close_aside() noexcept;

  // Whether a copy aside (its state `aside`) is the one this store's state names.
  static bool same_copy(const StoreState& aside, const StoreState& main);

  // An interrupted copy's tables: those whose copy point was committed stay, the others go.
  void drop_unfinished_tables();

  // Switches the store file to rollback-journal mode; false when another process has it
  // open in WAL mode (SQLite then keeps WAL mode).
  // (No busy wait: the caller decides what to do when it cannot.)
  bool leave_wal_mode();
  bool swap_main_leaves_wal();
  static bool journal_mode_to(sqlite3* db, const std::string& mode);
  void apply_wal_settings();

  // Opens PATH again after the bulk load (the new file, or the old one if the rename
  // failed), and takes the one-writer lock on what is now there.
  void reopen_main();
  [[noreturn]] void fail(const std::string& what) const;
  void exec(const std::string& sql) const;
  Stmt prepare(const std::string& sql) const;
  void step_done(sqlite3_stmt* st) const;
  int64_t query_int(const std::string& sql) const;
  template <class MakeSql>
  sqlite3_stmt* statement(const TableDef& def, const std::string& kind, MakeSql make) {
    auto key = std::to_string(def.id) + ":" + kind;
    auto it = stmts_.find(key);
    if (it == stmts_.end()) it = stmts_.emplace(key, prepare(make())).first;
    return it->second.get();
  }
  void forget_statements(uint32_t id);
  ApplyStatements& apply_statements(const TableDef& def);

  void require_txn(const char* op) const;

  // The stored table `def` names (by id), as this transaction sees it (or as last
  // committed, outside one). Its sqlite_name is the only name the store uses for it.
  const TableDef& table_of(const TableDef& def) const;
  const std::string& name_of(const TableDef& def) const;

  // Whether no table, index or view in the file has `name` (compared as SQLite compares
  // names: ignoring ASCII case) and SQLite or pgseed does not reserve it.
  bool name_free(const std::string& name) const;

  // A new table's SQLite name: the rule in sqlite_store.h.
  std::string choose_name(const TableDef& def) const;
  std::string create_sql(const TableDef& def, const std::string& lname) const;
  // INSERT of `rows` rows: the parameters of row r (from 0) are r * columns + 1 onwards.
  std::string insert_sql(const TableDef& def, const char* verb, size_t rows = 1) const;

  // WHERE clause matching one row: by key, or (no key) the first row equal on every
  // column; `IS` makes NULLs compare equal.
  std::string match_clause(const TableDef& def, size_t first_param) const;
  // A table without key gets an index on its first kMatchIndexColumns columns (not
  // bytea), named _pgseed_match_ID, so that match_clause() finds a row without reading
  // the whole table; made if missing (inside the caller's transaction).
  void ensure_match_index(const TableDef& def);
  static constexpr size_t kMatchIndexColumns = 4;
  // insert_batch() binds this many rows to one INSERT (fewer when they would take more
  // parameters than the library allows).
  static constexpr size_t kRowsPerInsert = 32;
  void bind_match(sqlite3_stmt* st, const TableDef& def, std::span<const Datum> row, int first);
  static void check_width(const TableDef& def, std::span<const Datum> row);
  void bind_row(sqlite3_stmt* st, const TableDef& def, std::span<const Datum> row, int first);
  void bind(sqlite3_stmt* st, int idx, const ColumnDef& col, const Datum& d) const;

  // Appends a column's PostgreSQL text form to `out`; false for NULL.
  static bool column_text(sqlite3_stmt* st, int i, const ColumnDef& col, std::string& out);
  void create_metadata();

  // Stores written before pgseed tracked columns by identity lack attnum and type_mod:
  // add them (0 and -1: unknown, compared by name and type only). A read-only store is
  // read as it is.
  void upgrade_metadata();

  // Format 1 -> 2 (sqlite_values.h), in one transaction: every value of a numeric(p<=15,s),
  // timestamptz, float4 or float8 column becomes what format 2 binds for its text (each
  // format-1 value is PostgreSQL's text, or a REAL already), by the same function bind()
  // uses (so that key lookups find the rows). A table with such a numeric column is
  // rebuilt under a reserved name (SQLite cannot change a column's declared type in place)
  // and takes its recorded name back; the others are updated in place.
  void upgrade_format(const LogSink& log);
  static const char* storage_name(StorageClass s);
  void write_table_meta(const TableDef& def);

  // Re-reads the metadata when another connection committed since the last look (outside
  // the writer's own transactions and bulk load, whose metadata this store itself holds).
  void reload_if_changed();
  static bool same_tables(const std::vector<TableDef>& a, const std::vector<TableDef>& b);
  void load();
  void load_metadata();

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
  bool view_ = false;             // a reader's read transaction is open (refresh())
  int64_t data_version_ = -1;     // PRAGMA data_version when the metadata was last read
  uint64_t tables_version_ = 0;   // moves when a re-read found other tables
  StoreState state_, pending_state_;
  std::vector<TableDef> tables_, pending_tables_;
  // SQLite names of the tables dropped in this transaction, by PostgreSQL (schema, name):
  // a table created again under that name takes its old name back (create_table).
  std::map<std::pair<std::string, std::string>, std::string> released_;
  StatementCache stmts_;
  std::string mask_;  // update(): reused, so that no change allocates it
  mutable std::string scratch_;  // decoded bytea, bound SQLITE_TRANSIENT
};

}  // namespace pgseed::sqlite
