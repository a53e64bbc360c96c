// SqliteStore: rows: writes (copy and apply), reads, and binding values to statements.
#include "store/sqlite/sqlite_store_impl.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string_view>

#include "pgseed/error.h"
#include "store/sqlite_values.h"
#include "model/value_codec.h"

namespace pgseed::sqlite {

void SqliteStore::insert_batch(const TableDef& def, const RowBatch& rows) {
  require_txn("insert_batch");
  // Rows go in kRowsPerInsert at a time, one statement for them all: a statement's fixed
  // work (its transaction, its cursor, its halt and reset) is then paid once per group.
  // Measured on 2M narrow rows: 1.6-1.9x the rows/s of a statement per row.
  const size_t ncols = def.columns.size();
  const size_t max_params = size_t(sqlite3_limit(db_.get(), SQLITE_LIMIT_VARIABLE_NUMBER, -1));
  const size_t per = ncols == 0 ? 1 : std::min(kRowsPerInsert, max_params / ncols);
  Row row;
  size_t i = 0;
  if (per > 1 && rows.rows() >= per) {
    sqlite3_stmt* many = statement(def, "insert*" + std::to_string(per),
                                   [&] { return insert_sql(def, "INSERT", per); });
    for (; i + per <= rows.rows(); i += per) {
      for (size_t k = 0; k < per; ++k) {
        rows.row(i + k, row);
        bind_row(many, def, row, 1 + int(k * ncols));
      }
      step_done(many);
    }
  }
  if (i == rows.rows()) return;
  sqlite3_stmt* st = statement(def, "insert", [&] { return insert_sql(def, "INSERT"); });
  for (; i < rows.rows(); ++i) {
    rows.row(i, row);
    bind_row(st, def, row, 1);
    step_done(st);
  }
}

void SqliteStore::upsert(const TableDef& def, std::span<const Datum> row) {
  require_txn("upsert");
  ApplyStatements& a = apply_statements(def);
  if (!a.upsert) a.upsert = prepare(insert_sql(def, a.keyed ? "INSERT OR REPLACE" : "INSERT"));
  bind_row(a.upsert.get(), def, row, 1);
  step_done(a.upsert.get());
}

void SqliteStore::update(const TableDef& def, std::span<const Datum> old_row,
            std::span<const Datum> new_row) {
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
    if (!a.keyed) ensure_match_index(def);
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

void SqliteStore::remove(const TableDef& def, std::span<const Datum> old_row) {
  require_txn("remove");
  check_width(def, old_row);
  ApplyStatements& a = apply_statements(def);
  if (!a.remove) {
    if (!a.keyed) ensure_match_index(def);
    a.remove = prepare("DELETE FROM " + qi(name_of(def)) + match_clause(def, 1));
  }
  bind_match(a.remove.get(), def, old_row, 1);
  step_done(a.remove.get());
}

void SqliteStore::truncate(const TableDef& def) {
  require_txn("truncate");
  exec("DELETE FROM " + qi(name_of(def)));
}

void SqliteStore::scan(const TableDef& def, const std::function<void(const Row&)>& fn) const {
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

bool SqliteStore::lookup(const TableDef& def, std::span<const std::string> key,
            const std::function<void(const Row&)>& fn) const {
  std::vector<const ColumnDef*> key_cols(key.size(), nullptr);
  for (const auto& c : def.columns)
    if (c.key_position > 0 && size_t(c.key_position) <= key.size()) key_cols[c.key_position - 1] = &c;
  std::string cond;
  for (size_t k = 0; k < key.size(); ++k) {
    if (!key_cols[k] || !def.has_key())
      return Store::lookup(def, key, fn);  // reports the key mismatch
    cond += (k ? " AND " : "") + qi(key_cols[k]->name) + " = ?" + std::to_string(k + 1);
  }
  // Cached per table (forgotten with the table's other statements when its definition
  // changes: forget_statements, reload_if_changed).
  auto* self = const_cast<SqliteStore*>(this);
  sqlite3_stmt* st = self->statement(def, "lookup", [&] { return select_sql(def) + " WHERE " + cond; });
  struct Reset {
    sqlite3_stmt* st;
    ~Reset() {
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
    }
  } reset{st};
  for (size_t k = 0; k < key.size(); ++k)
    bind(st, int(k + 1), *key_cols[k], Datum::of(key[k]));
  bool found = false;
  read_rows(st, def, [&](const Row& r) {
    found = true;
    fn(r);
  });
  return found;
}

uint64_t SqliteStore::count(const TableDef& def) const {
  return uint64_t(query_int("SELECT count(*) FROM " + qi(name_of(def))));
}

std::string SqliteStore::select_sql(const TableDef& def) const {
  std::string cols;
  for (const auto& c : def.columns) cols += (cols.empty() ? "" : ", ") + qi(c.name);
  return "SELECT " + (cols.empty() ? std::string("NULL") : cols) + " FROM " + qi(name_of(def));
}

void SqliteStore::read_rows(sqlite3_stmt* st, const TableDef& def, const std::function<void(const Row&)>& fn) const {
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

std::string SqliteStore::insert_sql(const TableDef& def, const char* verb, size_t rows) const {
  if (def.columns.empty()) return std::string(verb) + " INTO " + qi(name_of(def)) + " DEFAULT VALUES";
  std::string cols, params;
  for (size_t i = 0; i < def.columns.size(); ++i) {
    cols += (i ? ", " : "") + qi(def.columns[i].name);
    params += (i ? ", ?" : "(?");
  }
  params += ")";
  std::string sql = std::string(verb) + " INTO " + qi(name_of(def)) + " (" + cols + ") VALUES " + params;
  for (size_t r = 1; r < rows; ++r) sql += ", " + params;
  return sql;
}

std::string SqliteStore::match_clause(const TableDef& def, size_t first_param) const {
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

void SqliteStore::ensure_match_index(const TableDef& def) {
  // The first columns, bytea skipped (long values that rarely tell rows apart): the
  // match's subquery then reads the rows equal on them instead of the whole table, and
  // still takes the first row equal on every column (LIMIT 1: one of equal rows). Made on
  // the first UPDATE or DELETE of the table, so the copy does not pay for it and stores
  // written before it get it too; it goes with the table when the table is dropped or
  // rebuilt (alter_table, format upgrade), and comes back at the next change after that.
  std::string cols;
  size_t n = 0;
  for (const auto& c : def.columns) {
    if (c.storage == StorageClass::kBytes) continue;
    cols += (cols.empty() ? "" : ", ") + qi(c.name);
    if (++n == kMatchIndexColumns) break;
  }
  if (cols.empty()) return;
  exec("CREATE INDEX IF NOT EXISTS " + qi("_pgseed_match_" + std::to_string(def.id)) + " ON " +
       qi(name_of(def)) + " (" + cols + ")");
}

void SqliteStore::bind_match(sqlite3_stmt* st, const TableDef& def, std::span<const Datum> row, int first) {
  bool keyed = def.has_key();
  for (size_t i = 0; i < def.columns.size(); ++i) {
    if (keyed && def.columns[i].key_position == 0) continue;
    Datum d = i < row.size() ? row[i] : Datum::null();
    bind(st, first + int(i), def.columns[i], d);
  }
}

void SqliteStore::check_width(const TableDef& def, std::span<const Datum> row) {
  if (row.size() != def.columns.size())
    throw Error(ErrorCategory::kDecode, "row for " + def.qualified() + " has " +
                                            std::to_string(row.size()) + " values, expected " +
                                            std::to_string(def.columns.size()));
}

void SqliteStore::bind_row(sqlite3_stmt* st, const TableDef& def, std::span<const Datum> row, int first) {
  check_width(def, row);
  for (size_t i = 0; i < row.size(); ++i)
    if (row[i].kind != Datum::Kind::kUnchanged) bind(st, first + int(i), def.columns[i], row[i]);
}

void SqliteStore::bind(sqlite3_stmt* st, int idx, const ColumnDef& col, const Datum& d) const {
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

bool SqliteStore::column_text(sqlite3_stmt* st, int i, const ColumnDef& col, std::string& out) {
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

}  // namespace pgseed::sqlite
