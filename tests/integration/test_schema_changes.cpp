// Schema changes on the source (issue: tables have their own sync state): every migration
// is either followed exactly or the table is copied again; the store never silently holds
// other data than the source. Each case runs one-shot (a sync after the migration) and
// following (the migration while `sync --follow` runs), on both stores, and ends with
// `dump` equal to the source for every published table, no stored table the source no
// longer publishes, and `verify` exit 0.
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "store_kinds.h"
#include "harness.h"
#include "replica_compare.h"
#include "stream_support.h"

namespace pgseed::test {
namespace {

struct Case {
  const char* name;
  const char* setup;      // before the first sync (a publication p FOR ALL TABLES exists)
  const char* migration;  // after it
  const char* log;        // a line the follower logs once it has dealt with the migration
};

const Case kCases[] = {
    {"RenameColumn", "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 50) i;",
     "ALTER TABLE t RENAME COLUMN v TO w;", "public.t"},
    {"RenameColumnThenDml", "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 50) i;",
     "ALTER TABLE t RENAME COLUMN v TO w; UPDATE t SET w = w + 100 WHERE id = 1;", "public.t"},
    {"RenameColumnAndReuseName",
     "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 50) i;",
     "ALTER TABLE t RENAME COLUMN v TO w; ALTER TABLE t ADD COLUMN v box;"
     "UPDATE t SET v = box(point(1, 3), point(2, 4)) WHERE id = 2; UPDATE t SET w = 0 WHERE id = 3;",
     "public.t"},
    {"ColumnTypeChange", "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 50) i;",
     "ALTER TABLE t ALTER COLUMN v TYPE text USING (v * 10)::text; UPDATE t SET v = 'x' WHERE id = 1;", "public.t"},
    {"ColumnTypeChangeNoDml", "CREATE TABLE t (id int PRIMARY KEY, v numeric(10,2)); INSERT INTO t SELECT i, i / 3.0 FROM generate_series(1, 50) i;",
     "ALTER TABLE t ALTER COLUMN v TYPE numeric(12,4);", "public.t"},
    {"RewriteSameType", "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 50) i;",
     "ALTER TABLE t ALTER COLUMN v TYPE int USING v * 2; UPDATE t SET v = 0 WHERE id = 1;", "public.t"},
    {"RenameTable", "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 50) i;",
     "ALTER TABLE t RENAME TO t2; INSERT INTO t2 VALUES (1000, 1);", "public.t"},
    {"RenameTableNoDml", "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 50) i;",
     "ALTER TABLE t RENAME TO t2;", "public.t"},
    {"DropTable",
     "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 50) i;"
     "CREATE TABLE keep (id int PRIMARY KEY); INSERT INTO keep VALUES (1);",
     "DROP TABLE t; INSERT INTO keep VALUES (2);", "public.t"},
    {"AddColumnDefaultNoDml", "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 50) i;",
     "ALTER TABLE t ADD COLUMN x int DEFAULT 5;", "public.t"},
    {"AddColumnVolatileDefault", "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 50) i;",
     "ALTER TABLE t ADD COLUMN x float8 DEFAULT random(); UPDATE t SET v = 0 WHERE id = 1;", "public.t"},
    {"DropColumnNoDml", "CREATE TABLE t (id int PRIMARY KEY, v int, w text); INSERT INTO t SELECT i, i, 'w' FROM generate_series(1, 50) i;",
     "ALTER TABLE t DROP COLUMN w;", "public.t"},
    {"DropColumnAddSameName",
     "CREATE TABLE t (id int PRIMARY KEY, v int, w int); INSERT INTO t SELECT i, i, i FROM generate_series(1, 50) i;",
     "ALTER TABLE t DROP COLUMN w; ALTER TABLE t ADD COLUMN w int; UPDATE t SET v = 0 WHERE id = 1;", "public.t"},
    {"DropExpression",
     "CREATE TABLE g (id int PRIMARY KEY, a int, b int GENERATED ALWAYS AS (a * 2) STORED);"
     "INSERT INTO g (id, a) SELECT i, i FROM generate_series(1, 50) i;",
     "ALTER TABLE g ALTER COLUMN b DROP EXPRESSION; UPDATE g SET a = a WHERE id = 1;", "public.g"},
    {"NewTableAlteredBeforeSync", "CREATE TABLE keep (id int PRIMARY KEY); INSERT INTO keep VALUES (1);",
     "CREATE TABLE n (id int PRIMARY KEY, v int); INSERT INTO n SELECT i, i FROM generate_series(1, 20) i;"
     "ALTER TABLE n ADD COLUMN x int; UPDATE n SET x = 7;", "public.n"},
    {"ZeroColumnTables",
     "CREATE TABLE z (); INSERT INTO z DEFAULT VALUES; INSERT INTO z DEFAULT VALUES;",
     "INSERT INTO z DEFAULT VALUES; CREATE TABLE z2 (a int); INSERT INTO z2 VALUES (1);"
     "ALTER TABLE z2 DROP COLUMN a; INSERT INTO z2 DEFAULT VALUES;", "public.z2"},
    {"KeyChange",
     "CREATE TABLE t (id int, v int, CONSTRAINT t_pk PRIMARY KEY (id)); INSERT INTO t SELECT i, i % 3 FROM generate_series(1, 30) i;",
     "ALTER TABLE t DROP CONSTRAINT t_pk; ALTER TABLE t REPLICA IDENTITY FULL;"
     "INSERT INTO t VALUES (1, 1), (1, 1); DELETE FROM t WHERE ctid = (SELECT min(ctid) FROM t WHERE id = 2);",
     "public.t"},
};

class SchemaChangeTest
    : public ::testing::TestWithParam<std::tuple<std::string, size_t, bool>> {};

TEST_P(SchemaChangeTest, FollowedOrCopiedAgain) {
  auto [kind, index, follow] = GetParam();
  const Case& c = kCases[index];
  TestDatabase src;
  src.db().exec(c.setup);
  src.db().exec("CREATE PUBLICATION p FOR ALL TABLES");
  std::string store = temp_store(kind);
  std::string slot = "s_" + src.name();
  sync_ok(src, store, {"--publication", "p", "--slot", slot});
  expect_replica_equal(src, store);

  if (!follow) {
    src.db().exec(c.migration);
    sync_ok(src, store);
    expect_replica_equal(src, store);
    return;
  }
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--follow",
                          "--schema-check-interval", "0.2"},
                         log);
  ASSERT_TRUE(wait_until([&] { return read_text(log).find("streaming from") != std::string::npos; }, 60))
      << read_text(log);
  size_t before = read_text(log).size();
  src.db().exec(c.migration);
  // The follower deals with the migration: it copies the table again or drops it.
  std::string table = c.log;
  bool dealt = wait_until(
      [&] {
        std::string l = read_text(log).substr(before);
        return l.find("table " + table) != std::string::npos &&
               (l.find(" copied at ") != std::string::npos ||
                l.find("removed from the store") != std::string::npos);
      },
      60, 100);
  // And everything the source wrote is applied.
  std::string end = src.db().value("SELECT pg_current_wal_lsn()::text");
  EXPECT_TRUE(wait_confirmed(src.db(), slot, end, 60));
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_pid(pid), 0) << read_text(log);
  ASSERT_TRUE(dealt) << read_text(log);
  expect_replica_equal(src, store);
}

std::string case_name(const ::testing::TestParamInfo<SchemaChangeTest::ParamType>& info) {
  return std::get<0>(info.param) + "_" + kCases[std::get<1>(info.param)].name +
         (std::get<2>(info.param) ? "_Follow" : "_OneShot");
}

INSTANTIATE_TEST_SUITE_P(Stores, SchemaChangeTest,
                         ::testing::Combine(::testing::ValuesIn(test_support::kStoreKinds),
                                            ::testing::Range(size_t(0), std::size(kCases)),
                                            ::testing::Bool()),
                         case_name);

// kill -9 at each state of a table added later: before its copy is committed, and after
// it but before the stream has passed its copy point. Changes of the table made before
// the copy point are in the copy: the restarted run must not apply them again (a keyless
// table of unique numbers shows any duplicate), nor lose those after it.
class TableStateKillTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(TableStateKillTest, RestartEndsEqual) {
  auto [kind, point] = GetParam();
  TestDatabase src;
  src.db().exec(
      "CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1);"
      "CREATE PUBLICATION p FOR TABLE a;");
  std::string store = temp_store(kind);
  sync_ok(src, store, {"--publication", "p", "--slot", "s_" + src.name()});
  src.db().exec(
      "CREATE TABLE k (n int); ALTER TABLE k REPLICA IDENTITY FULL;"
      "INSERT INTO k SELECT generate_series(1, 100);"
      "ALTER PUBLICATION p ADD TABLE k;"
      "INSERT INTO k SELECT generate_series(101, 200); INSERT INTO a VALUES (2);");
  setenv("PGSEED_FAILPOINT", point.c_str(), 1);
  RunResult killed = run_pgseed({"sync", "--source", src.conninfo(), "--store", store});
  unsetenv("PGSEED_FAILPOINT");
  ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
  src.db().exec("INSERT INTO k SELECT generate_series(201, 300); DELETE FROM k WHERE n % 7 = 0;");
  sync_ok(src, store);
  expect_replica_equal(src, store);
  EXPECT_EQ(src.db().value("SELECT count(*) FROM k"), "258");
}

INSTANTIATE_TEST_SUITE_P(Stores, TableStateKillTest,
                         ::testing::Combine(::testing::ValuesIn(test_support::kStoreKinds),
                                            ::testing::Values("table-sync-before-commit",
                                                              "after-table-sync")),
                         [](const auto& info) {
                           std::string p = std::get<1>(info.param);
                           std::replace(p.begin(), p.end(), '-', '_');
                           return std::get<0>(info.param) + "_" + p;
                         });

class ResyncTest : public StoreTest {};

// `pgseed resync` copies a table again: here one that had stopped matching the source
// because the publication did not publish its UPDATEs for a while.
TEST_P(ResyncTest, ResyncRepairsATable) {
  TestDatabase src;
  src.db().exec(
      "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 100) i;"
      "CREATE TABLE k (n int); ALTER TABLE k REPLICA IDENTITY FULL; INSERT INTO k SELECT generate_series(1, 50);"
      "CREATE PUBLICATION p FOR ALL TABLES;");
  std::string store = temp_store(store_kind());
  sync_ok(src, store, {"--publication", "p", "--slot", "s_" + src.name()});
  src.db().exec("ALTER PUBLICATION p SET (publish = 'insert'); UPDATE t SET v = -v WHERE id <= 10;"
                "ALTER PUBLICATION p SET (publish = 'insert, update, delete, truncate');"
                "INSERT INTO k SELECT generate_series(51, 60);");
  sync_ok(src, store);
  RunResult bad = run_pgseed({"verify", "--source", src.conninfo(), "--store", store});
  EXPECT_EQ(bad.exit_code, 9) << bad.out << bad.err;  // the store missed those updates
  RunResult r = run_pgseed({"resync", "--source", src.conninfo(), "--store", store, "--table", "t, public.k"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("table public.t copied at"), std::string::npos) << r.err;
  src.db().exec("INSERT INTO k SELECT generate_series(61, 70); UPDATE t SET v = 0 WHERE id = 50;");
  sync_ok(src, store);
  expect_replica_equal(src, store);
  RunResult missing = run_pgseed({"resync", "--source", src.conninfo(), "--store", store, "--table", "nope"});
  EXPECT_EQ(missing.exit_code, 5) << missing.err;
}

// A lost slot: `sync` says so; `sync --reseed` makes the slot anew and copies every table
// again, and the store ends equal, changes made while no slot existed included.
TEST_P(ResyncTest, ReseedAfterTheSlotIsLost) {
  TestDatabase src;
  src.db().exec(
      "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 100) i;"
      "CREATE TABLE k (n int); ALTER TABLE k REPLICA IDENTITY FULL; INSERT INTO k SELECT generate_series(1, 50);"
      "CREATE PUBLICATION p FOR ALL TABLES;");
  std::string store = temp_store(store_kind());
  std::string slot = "s_" + src.name();
  sync_ok(src, store, {"--publication", "p", "--slot", slot});
  src.db().exec("SELECT pg_drop_replication_slot('" + slot + "');"
                "UPDATE t SET v = 0 WHERE id < 20; INSERT INTO k SELECT generate_series(51, 80); DELETE FROM t WHERE id > 90;");
  RunResult lost = run_pgseed({"sync", "--source", src.conninfo(), "--store", store});
  EXPECT_EQ(lost.exit_code, 6) << lost.err;
  RunResult r = run_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--reseed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  src.db().exec("INSERT INTO k SELECT generate_series(81, 90); UPDATE t SET v = 1 WHERE id = 1;");
  sync_ok(src, store);
  expect_replica_equal(src, store);
}

INSTANTIATE_TEST_SUITE_P(Stores, ResyncTest, ::testing::ValuesIn(test_support::kStoreKinds),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace pgseed::test
