// SqliteStore's match index (sqlite_store_impl.h, ensure_match_index): a table without key
// gets an index on its first columns at its first UPDATE or DELETE, so that the row a
// change matches is found without reading the whole table; the copy does not make it, a
// rebuilt table gets it again, and a keyed table never has one. (Which row is changed is
// the conformance suite's: KeylessTableKeepsDuplicatesAndRemovesOne and the next test.)
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

#include "store/sqlite_store.h"
#include "unit/store_test_support.h"

namespace pgseed {
namespace {

using namespace test_support;

// The first column of the first row of `sql`, on a plain connection to the file.
std::string first_value(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  std::string out;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::string index_sql(const std::string& path, const std::string& table) {
  return first_value(path, "SELECT group_concat(sql, ' | ') FROM sqlite_master WHERE type = 'index' "
                           "AND tbl_name = '" + table + "' AND sql IS NOT NULL");
}

// How SQLite finds the row a keyless change matches (EXPLAIN QUERY PLAN's details).
std::string match_plan(const std::string& path, const std::string& table) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::string sql = "EXPLAIN QUERY PLAN SELECT rowid FROM \"" + table + "\" WHERE a IS 1 AND b IS 'x' LIMIT 1";
  sqlite3_stmt* st = nullptr;
  std::string out;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  while (st && sqlite3_step(st) == SQLITE_ROW)
    out += reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

TEST(SqliteMatchIndex, KeylessTableGetsItAtItsFirstChangeAndAgainAfterARebuild) {
  TempDir tmp;
  const std::string path = tmp.sub("store.db");
  auto s = open_sqlite_store(path, false);
  TableDef bag = bag_def(), items = items_def();
  s->begin();
  s->create_table(bag);
  s->create_table(items);
  for (int i = 0; i < 100; ++i) {
    std::string v = std::to_string(i);
    s->upsert(bag, datums({v, "x"}));
    s->upsert(items, datums({v, "x", N, N, N, N}));
  }
  s->commit();
  EXPECT_EQ(index_sql(path, "bag"), "");  // inserts alone do not make it

  s->begin();
  s->remove(bag, datums({"1", "x"}));
  s->remove(items, datums({"1", "x", N, N, N, N}));
  s->update(items, {}, datums({"2", "y", N, N, N, N}));
  s->commit();
  EXPECT_EQ(index_sql(path, "bag"), "CREATE INDEX \"_pgseed_match_1\" ON \"bag\" (\"a\", \"b\")");
  EXPECT_EQ(index_sql(path, "items"), "");
  EXPECT_NE(match_plan(path, "bag").find("_pgseed_match_1"), std::string::npos) << match_plan(path, "bag");

  // A rebuild (a new column) drops the table with its index; the next change makes it again.
  TableDef more = bag;
  more.columns.push_back(col("c", kInt4Oid));
  s->begin();
  s->alter_table(bag, more, {});
  s->commit();
  EXPECT_EQ(index_sql(path, "bag"), "");
  s->begin();
  s->update(more, datums({"3", "x", N}), datums({"3", "z", N}));
  s->commit();
  EXPECT_EQ(index_sql(path, "bag"), "CREATE INDEX \"_pgseed_match_1\" ON \"bag\" (\"a\", \"b\", \"c\")");
  EXPECT_EQ(s->count(more), 99u);
}

}  // namespace
}  // namespace pgseed
