// Table names that are distinct in PostgreSQL but not as SQLite table names (issue #14):
// a."b.c" and "a.b".c (the same `a.b.c`), t and "T" (SQLite ignores ASCII case), tables
// named like pgseed's metadata or SQLite's own tables, and a table named like the name the
// store gives another one ("t~2"). The first sync copies them all, streamed changes reach
// each one's own table, a rename onto a taken name and a swap of t and "T" are followed;
// after each step `dump` equals the source and `verify` exits 0. Both stores (RocksDB keys
// tables by number, so there the names cannot collide at all), one-shot and following.
#include <signal.h>
#include <sqlite3.h>

#include <map>
#include <set>
#include <string>

#include "store_kinds.h"
#include "harness.h"
#include "pgseed/replica.h"
#include "replica_compare.h"
#include "stream_support.h"

namespace pgseed::test {
namespace {

// Every table, as SQL names it, with the number of rows it starts with (all different,
// and each row names its table, so rows that land in another table's place show).
const std::map<std::string, int> kTables = {
    {"a.\"b.c\"", 11},          {"\"a.b\".c", 12},       {"public.t", 13},
    {"public.\"T\"", 14},       {"public.\"t~2\"", 15},  {"public._pgseed_tables", 16},
    {"public.sqlite_master", 17}, {"public.u", 18},
};

// The names a SQLite store gives them on the first copy (sqlite_store.h): the first by
// name order keeps the readable name.
const std::map<std::string, std::string> kSqliteNames = {
    {"a.\"b.c\"", "a.b.c"},
    {"\"a.b\".c", "a.b.c~2"},
    {"public.\"T\"", "T"},
    {"public._pgseed_tables", "~_pgseed_tables"},
    {"public.sqlite_master", "~sqlite_master"},
    {"public.t", "t~2"},
    {"public.\"t~2\"", "t~2~2"},
    {"public.u", "u"},
};

std::string setup_sql() {
  std::string sql = "CREATE SCHEMA a; CREATE SCHEMA \"a.b\";";
  for (const auto& [table, rows] : kTables) {
    // public.sqlite_master has no key: REPLICA IDENTITY FULL.
    bool keyless = table == "public.sqlite_master";
    sql += "CREATE TABLE " + table + " (id int" + (keyless ? "" : " PRIMARY KEY") + ", v text);";
    if (keyless) sql += "ALTER TABLE " + table + " REPLICA IDENTITY FULL;";
    sql += "INSERT INTO " + table + " SELECT i, " + quote_literal(table) + " || ' ' || i " +
           "FROM generate_series(1, " + std::to_string(rows) + ") i;";
  }
  return sql + "CREATE PUBLICATION p FOR ALL TABLES;";
}

// Inserts (of row `id`), updates and deletes in each of `tables`, in one transaction.
std::string dml_sql(const std::set<std::string>& tables, int id) {
  std::string sql = "BEGIN;";
  for (const auto& table : tables) {
    sql += "INSERT INTO " + table + " VALUES (" + std::to_string(id) + ", 'new in ' || " +
           quote_literal(table) + ");";
    sql += "UPDATE " + table + " SET v = v || ' updated' WHERE id % 3 = 0;";
    sql += "DELETE FROM " + table + " WHERE id % 4 = " + std::to_string(id % 4) + " AND id < 100;";
  }
  return sql + "COMMIT;";
}

// public.u renamed onto a name a."b.c" and "a.b".c already map to; t and "T" swap names;
// rows change in all three.
const char* kRenames =
    "BEGIN;"
    "ALTER TABLE u RENAME TO \"a.b.c\";"
    "ALTER TABLE t RENAME TO t_old; ALTER TABLE \"T\" RENAME TO t; ALTER TABLE t_old RENAME TO \"T\";"
    "INSERT INTO public.\"a.b.c\" VALUES (200, 'renamed');"
    "UPDATE t SET v = v || ' was T' WHERE id = 1; UPDATE \"T\" SET v = v || ' was t' WHERE id = 1;"
    "INSERT INTO t VALUES (300, 'in t'); INSERT INTO \"T\" VALUES (300, 'in T');"
    "COMMIT;";

std::string sqlite_path(const std::string& store) { return store.substr(store.find(':') + 1); }

// The row count of the SQLite table `name`, read with plain SQL on the file.
std::string sqlite_count(const std::string& path, const std::string& name) {
  sqlite3* db = nullptr;
  std::string out = "<error>";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    std::string quoted = "\"";
    for (char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    std::string sql = "SELECT count(*) FROM " + quoted + "\"";
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    else
      out = std::string("<error: ") + sqlite3_errmsg(db) + ">";
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

// The store's tables through the library: each one's SQLite name (empty for RocksDB)
// by its PostgreSQL name; and each one's row count by that name equals the source's.
std::map<std::string, std::string> store_names(TestDatabase& src, const std::string& store) {
  std::map<std::string, std::string> out;
  auto replica = Replica::open(store);
  for (const auto& t : replica->tables()) {
    out[t.name] = t.sqlite_table;
    EXPECT_EQ(std::to_string(replica->count(t.name)), src.db().value("SELECT count(*) FROM " + t.name))
        << t.name;
  }
  return out;
}

// The SQLite names are all distinct as SQLite compares them, and each SQLite table holds
// as many rows as its source table.
void expect_sqlite_tables_apart(TestDatabase& src, const std::string& store,
                                const std::map<std::string, std::string>& names) {
  std::set<std::string> folded;
  for (const auto& [table, name] : names) {
    std::string f = name;
    for (char& c : f) c = (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
    EXPECT_TRUE(folded.insert(f).second) << name;
    EXPECT_EQ(sqlite_count(sqlite_path(store), name), src.db().value("SELECT count(*) FROM " + table)) << table;
  }
}

class TableNamesTest : public ::testing::TestWithParam<std::tuple<std::string, bool>> {
 protected:
  // Runs `sql` on the source and brings the store up to it: a one-shot sync after it, or
  // a follower that is running while it is executed (and that has copied `copied` again,
  // where a table must be), stopped once the slot has confirmed everything.
  void step(TestDatabase& src, const std::string& store, const std::string& sql,
            const std::vector<std::string>& copied = {}) {
    auto [kind, follow] = GetParam();
    if (!follow) {
      src.db().exec(sql);
      sync_ok(src, store);
      return;
    }
    std::string log = temp_log_path();
    int pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--follow",
                            "--schema-check-interval", "0.2"},
                           log);
    ASSERT_TRUE(wait_until([&] { return read_text(log).find("streaming from") != std::string::npos; }, 60))
        << read_text(log);
    src.db().exec(sql);
    bool dealt = wait_until(
        [&] {
          std::string l = read_text(log);
          for (const auto& t : copied)
            if (l.find("table " + t + " copied at ") == std::string::npos) return false;
          return true;
        },
        60, 100);
    std::string end = src.db().value("SELECT pg_current_wal_lsn()::text");
    EXPECT_TRUE(wait_confirmed(src.db(), "s_" + src.name(), end, 60));
    kill(pid, SIGTERM);
    EXPECT_EQ(wait_pid(pid), 0) << read_text(log);
    EXPECT_TRUE(dealt) << read_text(log);
  }
};

TEST_P(TableNamesTest, CollidingNamesAreReplicated) {
  auto [kind, follow] = GetParam();
  bool sqlite = kind == "sqlite";
  TestDatabase src;
  src.db().exec(setup_sql());
  std::string store = temp_store(kind);
  sync_ok(src, store, {"--publication", "p", "--slot", "s_" + src.name()});
  expect_replica_equal(src, store);
  std::map<std::string, std::string> names = store_names(src, store);
  if (sqlite) {
    EXPECT_EQ(names, kSqliteNames);
    expect_sqlite_tables_apart(src, store, names);
  } else {
    for (const auto& [table, name] : names) EXPECT_EQ(name, "") << table;
    EXPECT_EQ(names.size(), kTables.size());
  }
  // `dump --table` takes PostgreSQL's names, never the SQLite ones: T unquoted is t, and
  // "t~2" is the source's table of that name, not public.t (whose SQLite table it names).
  expect_dump_equals(src, store, "T", "SELECT * FROM public.t");
  expect_dump_equals(src, store, "public.\"T\"", "SELECT * FROM public.\"T\"");
  expect_dump_equals(src, store, "\"t~2\"", "SELECT * FROM public.\"t~2\"");
  expect_dump_equals(src, store, "_pgseed_tables", "SELECT * FROM public._pgseed_tables");
  RunResult none = run_pgseed({"dump", "--store", store, "--table", "\"a.b.c~2\""});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("the store has no table"), std::string::npos) << none.err;

  // Streamed inserts, updates and deletes reach each table.
  std::set<std::string> tables;
  for (const auto& [table, rows] : kTables) tables.insert(table);
  step(src, store, dml_sql(tables, 100));
  expect_replica_equal(src, store);
  EXPECT_EQ(store_names(src, store), names);  // nothing copied again, nothing renamed
  if (sqlite) expect_sqlite_tables_apart(src, store, names);

  // Renamed onto taken names while streaming: the tables are copied again under names
  // of their own.
  step(src, store, kRenames, {"public.\"a.b.c\"", "public.t", "public.\"T\""});
  expect_replica_equal(src, store);
  names = store_names(src, store);
  EXPECT_EQ(names.count("public.u"), 0u);
  ASSERT_EQ(names.count("public.\"a.b.c\""), 1u);
  if (sqlite) {
    expect_sqlite_tables_apart(src, store, names);
    if (!follow) {
      // One table sync for the three (their Relation messages are in one transaction):
      // t and "T" each keep the SQLite name of their PostgreSQL name, the renamed one gets
      // the next free variant of a.b.c.
      std::map<std::string, std::string> want = kSqliteNames;
      want.erase("public.u");
      want["public.\"a.b.c\""] = "a.b.c~3";
      EXPECT_EQ(names, want);
    }
  }

  // And streaming goes on into the renamed tables.
  tables.erase("public.u");
  tables.insert("public.\"a.b.c\"");
  step(src, store, dml_sql(tables, 101));
  expect_replica_equal(src, store);
}

INSTANTIATE_TEST_SUITE_P(Stores, TableNamesTest,
                         ::testing::Combine(::testing::ValuesIn(test_support::kStoreKinds), ::testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + (std::get<1>(info.param) ? "_Follow" : "_OneShot");
                         });

}  // namespace
}  // namespace pgseed::test
