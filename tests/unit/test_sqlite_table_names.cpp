// SqliteStore table names (sqlite_store.h): PostgreSQL names that would be one SQLite name
// (ASCII case, the dot of schema.name, reserved prefixes) get tables of their own; the
// name chosen is recorded and read back, kept by a table copied again, chosen anew for a
// renamed one; objects a user made in the file are not taken over.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/sqlite_store.h"
#include "model/value_codec.h"
#include "unit/store_test_support.h"

namespace pgseed {
namespace {


using test_support::TempDir;

TableDef def(const std::string& schema, const std::string& name, uint32_t oid) {
  TableDef d;
  d.source_oid = oid;
  d.schema = schema;
  d.name = name;
  ColumnDef id;
  id.name = "id";
  id.type_oid = id.base_type_oid = kInt4Oid;
  id.type_name = "integer";
  id.storage = storage_class_for_type(kInt4Oid);
  id.key_position = 1;
  ColumnDef v;
  v.name = "v";
  v.type_oid = v.base_type_oid = 25;
  v.type_name = "text";
  v.storage = StorageClass::kText;
  d.columns = {id, v};
  return d;
}

void put(Store& s, const TableDef& t, const std::string& id, const std::string& v) {
  Row row{Datum::of(id), Datum::of(v)};
  s.upsert(t, row);
}

// "id=v" for every row, in key order.
std::vector<std::string> rows(const Store& s, const TableDef& t) {
  std::vector<std::string> out;
  s.scan(t, [&](const Row& r) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i)
      line += (i ? "=" : "") + (r[i].is_null() ? std::string("NULL") : std::string(r[i].text));
    out.push_back(line);
  });
  return out;
}

const TableDef& find(const std::vector<TableDef>& tables, const std::string& schema, const std::string& name) {
  for (const auto& t : tables)
    if (t.schema == schema && t.name == name) return t;
  throw std::runtime_error("no table " + schema + "." + name);
}

// What the file itself says: `_pgseed_tables` (schema.name -> sqlite_name), and the
// first column of `sql` from a plain sqlite3 connection.
std::map<std::string, std::string> recorded_names(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT schema_name, table_name, sqlite_name FROM _pgseed_tables", -1, &st, nullptr),
            SQLITE_OK);
  std::map<std::string, std::string> out;
  while (sqlite3_step(st) == SQLITE_ROW)
    out[std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) + "|" +
        reinterpret_cast<const char*>(sqlite3_column_text(st, 1))] =
        reinterpret_cast<const char*>(sqlite3_column_text(st, 2));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::string sqlite_value(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    out = std::string("error: ") + sqlite3_errmsg(db);
  } else {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      out = std::string("error: ") + sqlite3_errmsg(db);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// The PostgreSQL names of one publication that SQLite cannot tell apart, in the order a
// copy creates them (by schema, then name).
std::vector<TableDef> colliding() {
  return {def("a", "b.c", 100),          def("a.b", "c", 101),           def("public", "SQLITE_stat1", 102),
          def("public", "T", 103),       def("public", "_pgseed_tables", 104), def("public", "t", 105),
          def("public", "t~2", 106),     def("sqlite_x", "y", 107)};
}

TEST(SqliteTableNames, CollidingNamesGetTablesOfTheirOwn) {
  TempDir tmp;
  const std::string path = tmp.sub("store.db");
  const std::map<std::string, std::string> want = {
      {"a|b.c", "a.b.c"},           {"a.b|c", "a.b.c~2"},
      {"public|SQLITE_stat1", "~SQLITE_stat1"}, {"public|T", "T"},
      {"public|_pgseed_tables", "~_pgseed_tables"}, {"public|t", "t~2"},
      {"public|t~2", "t~2~2"},      {"sqlite_x|y", "~sqlite_x.y"}};
  {
    auto s = open_sqlite_store(path, false);
    std::vector<TableDef> tables = colliding();
    s->begin();
    for (auto& t : tables) s->create_table(t);
    for (auto& t : tables) put(*s, t, "1", t.qualified());
    s->commit();
    for (const auto& t : tables) {
      EXPECT_EQ(t.sqlite_name, want.at(t.schema + "|" + t.name)) << t.qualified();
      EXPECT_EQ(rows(*s, t), std::vector<std::string>{"1=" + t.qualified()});
    }
  }
  EXPECT_EQ(recorded_names(path), want);
  // Each recorded table holds its own row; plain SQL reads it under that name.
  EXPECT_EQ(sqlite_value(path, "SELECT v FROM \"t~2\""), "public.t");
  EXPECT_EQ(sqlite_value(path, "SELECT v FROM \"T\""), "public.\"T\"");
  EXPECT_EQ(sqlite_value(path, "SELECT v FROM \"a.b.c~2\""), "\"a.b\".c");
  EXPECT_EQ(sqlite_value(path, "SELECT v FROM \"~_pgseed_tables\""), "public._pgseed_tables");

  // Reopened, the store reads each table under its recorded name (recomputing it would
  // read public."T"'s table for public.t).
  auto s = open_sqlite_store(path, true);
  std::vector<TableDef> tables = s->tables();
  ASSERT_EQ(tables.size(), want.size());
  for (const auto& t : tables) {
    EXPECT_EQ(t.sqlite_name, want.at(t.schema + "|" + t.name));
    EXPECT_EQ(rows(*s, t), std::vector<std::string>{"1=" + t.qualified()});
    EXPECT_EQ(s->count(t), 1u);
  }
  std::string key = "1";
  bool found = s->lookup(find(tables, "public", "t"), std::span<const std::string>(&key, 1), [&](const Row& r) {
    EXPECT_EQ(std::string(r[1].text), "public.t");
  });
  EXPECT_TRUE(found);

  // Changes, truncate and drop reach the table of that name only.
  s->begin();
  put(*s, find(tables, "public", "t"), "2", "two");
  Row old_key{Datum::of("1"), Datum::null()};
  s->remove(find(tables, "public", "T"), old_key);
  Row upd{Datum::of("1"), Datum::of("changed")};
  s->update(find(tables, "a.b", "c"), {}, upd);
  s->truncate(find(tables, "public", "_pgseed_tables"));
  s->drop_table(find(tables, "a", "b.c"));
  s->commit();
  tables = s->tables();
  EXPECT_EQ(rows(*s, find(tables, "public", "t")), (std::vector<std::string>{"1=public.t", "2=two"}));
  EXPECT_TRUE(rows(*s, find(tables, "public", "T")).empty());
  EXPECT_EQ(rows(*s, find(tables, "a.b", "c")), std::vector<std::string>{"1=changed"});
  EXPECT_TRUE(rows(*s, find(tables, "public", "_pgseed_tables")).empty());
  EXPECT_EQ(rows(*s, find(tables, "public", "t~2")), std::vector<std::string>{"1=public.\"t~2\""});
  EXPECT_EQ(tables.size(), want.size() - 1);
  EXPECT_EQ(sqlite_value(path, "SELECT count(*) FROM sqlite_master WHERE name = 'a.b.c'"), "0");
  // pgseed's own tables are untouched by the table named like one of them.
  EXPECT_EQ(sqlite_value(path, "SELECT count(*) FROM _pgseed_tables"), std::to_string(want.size() - 1));
}

TEST(SqliteTableNames, TableCopiedAgainKeepsItsName) {
  TempDir tmp;
  const std::string path = tmp.sub("store.db");
  auto s = open_sqlite_store(path, false);
  TableDef upper = def("public", "T", 1), lower = def("public", "t", 2);
  s->begin();
  s->create_table(upper);
  s->create_table(lower);
  put(*s, upper, "1", "upper");
  put(*s, lower, "1", "lower");
  s->commit();
  ASSERT_EQ(upper.sqlite_name, "T");
  ASSERT_EQ(lower.sqlite_name, "t~2");

  // Both copied again in one transaction, the lower-case one created first (by the rule
  // alone it would now get `t`, and public."T" `T~2`): each keeps its name.
  s->begin();
  s->drop_table(upper);
  s->drop_table(lower);
  TableDef lower2 = def("public", "t", 2), upper2 = def("public", "T", 1);
  s->create_table(lower2);
  s->create_table(upper2);
  put(*s, lower2, "2", "lower again");
  s->commit();
  EXPECT_EQ(lower2.sqlite_name, "t~2");
  EXPECT_EQ(upper2.sqlite_name, "T");
  EXPECT_EQ(rows(*s, lower2), std::vector<std::string>{"2=lower again"});
  EXPECT_TRUE(rows(*s, upper2).empty());

  // Replaced by create_table alone (a table of the same name): the same.
  s->begin();
  TableDef lower3 = def("public", "t", 3);
  s->create_table(lower3);
  s->commit();
  EXPECT_EQ(lower3.sqlite_name, "t~2");
  EXPECT_EQ(s->tables().size(), 2u);

  // Not across transactions: tables dropped for good free their names; a new table of
  // the name gets one by the rule.
  s->begin();
  s->drop_table(upper2);
  s->drop_table(lower3);
  s->commit();
  s->begin();
  TableDef again = def("public", "t", 4);
  s->create_table(again);
  s->commit();
  EXPECT_EQ(again.sqlite_name, "t");
  EXPECT_EQ(recorded_names(path), (std::map<std::string, std::string>{{"public|t", "t"}}));
}

TEST(SqliteTableNames, AlterTableKeepsOrRenames) {
  TempDir tmp;
  const std::string path = tmp.sub("store.db");
  auto s = open_sqlite_store(path, false);
  TableDef dotted = def("a", "b.c", 1), lower = def("public", "t", 2), upper = def("public", "T", 3);
  s->begin();
  s->create_table(dotted);
  s->create_table(upper);
  s->create_table(lower);
  put(*s, upper, "1", "upper");
  put(*s, lower, "1", "lower");
  s->commit();
  ASSERT_EQ(lower.sqlite_name, "t~2");

  // A new column: same name, rows kept.
  TableDef wider = lower;
  ColumnDef x = wider.columns[1];
  x.name = "x";
  wider.columns.push_back(x);
  std::vector<Datum> fill(wider.columns.size(), Datum::null());
  s->begin();
  s->alter_table(lower, wider, fill);
  s->commit();
  std::vector<TableDef> tables = s->tables();
  const TableDef& t = find(tables, "public", "t");
  EXPECT_EQ(t.sqlite_name, "t~2");
  EXPECT_EQ(rows(*s, t), std::vector<std::string>{"1=lower=NULL"});

  // Renamed to public."a.b.c", whose readable name a."b.c" holds: the next free one.
  TableDef renamed = t;
  renamed.name = "a.b.c";
  s->begin();
  s->alter_table(t, renamed, fill);
  s->commit();
  tables = s->tables();
  EXPECT_EQ(find(tables, "public", "a.b.c").sqlite_name, "a.b.c~2");
  EXPECT_EQ(rows(*s, find(tables, "public", "a.b.c")), std::vector<std::string>{"1=lower=NULL"});
  EXPECT_EQ(rows(*s, find(tables, "public", "T")), std::vector<std::string>{"1=upper"});
  EXPECT_EQ(sqlite_value(path, "SELECT count(*) FROM sqlite_master WHERE name = 't~2'"), "0");
  EXPECT_EQ(recorded_names(path)["public|a.b.c"], "a.b.c~2");
}

TEST(SqliteTableNames, ObjectsAUserMadeInTheFileAreNotTaken) {
  TempDir tmp;
  const std::string path = tmp.sub("store.db");
  TableDef orders = def("public", "orders", 1);
  {
    auto s = open_sqlite_store(path, false);
    s->begin();
    s->create_table(orders);
    put(*s, orders, "1", "one");
    s->commit();
  }
  EXPECT_EQ(sqlite_value(path, "CREATE VIEW Summary AS SELECT count(*) AS n FROM orders"), "");
  EXPECT_EQ(sqlite_value(path, "CREATE INDEX by_v ON orders (v)"), "");
  auto s = open_sqlite_store(path, true);
  TableDef summary = def("public", "summary", 2), by_v = def("public", "BY_V", 3);
  s->begin();
  s->create_table(summary);
  s->create_table(by_v);
  put(*s, summary, "5", "five");
  s->commit();
  EXPECT_EQ(summary.sqlite_name, "summary~2");
  EXPECT_EQ(by_v.sqlite_name, "BY_V~2");
  EXPECT_EQ(rows(*s, summary), std::vector<std::string>{"5=five"});
  EXPECT_EQ(sqlite_value(path, "SELECT n FROM Summary"), "1");
}

}  // namespace
}  // namespace pgseed
