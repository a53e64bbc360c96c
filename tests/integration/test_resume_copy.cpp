// An interrupted first copy resumes (DESIGN.md "Per-table sync state"): killed at an exact
// moment (failpoints), the next run keeps every table whose copy was committed, reads only
// the others from the source (pg_stat_user_tables.seq_tup_read shows it), copies them
// under a snapshot of their own, and ends exactly equal to the source — with nothing
// applied twice (a keyless table of unique numbers shows any duplicate).
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "store_kinds.h"
#include "harness.h"
#include "replica_compare.h"
#include "stream_support.h"

namespace pgseed::test {

namespace {

// The source: `big` (~40 MB, copied first and committed on its own: the copy commits
// once a finished table is followed by 32 MB of rows), then small tables, one keyless.
void make_source(TestDatabase& src) {
  src.db().exec(
      "CREATE TABLE big (id int PRIMARY KEY, pad text);"
      "INSERT INTO big SELECT i, repeat(md5(i::text), 12) FROM generate_series(1, 100000) i;"
      "CREATE TABLE small1 (id int PRIMARY KEY, v text);"
      "INSERT INTO small1 SELECT i, 'v' || i FROM generate_series(1, 2000) i;"
      "CREATE TABLE small2 (id int PRIMARY KEY, v int);"
      "INSERT INTO small2 SELECT i, i * 2 FROM generate_series(1, 2000) i;"
      "CREATE TABLE k (n int); ALTER TABLE k REPLICA IDENTITY FULL;"
      "INSERT INTO k SELECT generate_series(1, 1000);"
      "CREATE PUBLICATION p FOR ALL TABLES;");
}

// Runs pgseed with PGSEED_FAILPOINT set: it must die there (SIGKILL).
void sync_killed_at(TestDatabase& src, const std::string& store, const std::string& point,
                    const std::vector<std::string>& extra = {}) {
  setenv("PGSEED_FAILPOINT", point.c_str(), 1);
  std::vector<std::string> args = {"sync", "--source", src.conninfo(), "--store", store};
  args.insert(args.end(), extra.begin(), extra.end());
  RunResult r = run_pgseed(args);
  unsetenv("PGSEED_FAILPOINT");
  ASSERT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
}

// Rows read by sequential scans of each table, once every pgseed session of this database
// has ended (a backend reports its statistics when it exits) and this test's own session
// has reported its scans (forced: otherwise at most once a second, when idle).
std::map<std::string, int64_t> rows_read(TestDatabase& src) {
  src.db().exec("SELECT pg_stat_force_next_flush()");
  EXPECT_TRUE(wait_until([&] {
    return src.db().value("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND application_name = 'pgseed'") == "0";
  }, 60));
  std::map<std::string, int64_t> out;
  for (const char* t : {"big", "small1", "small2", "k"})
    out[t] = std::stoll(src.db().value(
        "SELECT pg_stat_clear_snapshot(); SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = '" +
        std::string(t) + "'"));
  return out;
}

}  // namespace

class ResumeCopyTest : public ::testing::TestWithParam<std::string> {};

// Killed once `big` is committed: the next run keeps it (not read again), copies the
// others, and the changes made in between (to every table, and DDL) all arrive.
TEST_P(ResumeCopyTest, KilledAfterATableKeepsIt) {
  TestDatabase src;
  make_source(src);
  std::string store = temp_store(GetParam());
  sync_killed_at(src, store, "copy-tables-committed", {"--publication", "p", "-j", "1"});
  std::string slot = src.db().value("SELECT slot_name FROM pg_replication_slots WHERE database = current_database()");
  ASSERT_FALSE(slot.empty()) << "the interrupted copy's slot was not kept";

  // Between the runs: rows change everywhere, one table gains a column, one is dropped,
  // one is created.
  src.db().exec(
      "UPDATE big SET pad = 'changed' WHERE id % 1000 = 0; DELETE FROM big WHERE id % 999 = 0;"
      "INSERT INTO big VALUES (200001, 'new');"
      "UPDATE small1 SET v = 'u' WHERE id <= 10; INSERT INTO small2 VALUES (5000, 1);"
      "INSERT INTO k SELECT generate_series(1001, 1100); DELETE FROM k WHERE n % 7 = 0;"
      "ALTER TABLE small1 ADD COLUMN extra int DEFAULT 7;"
      "CREATE TABLE later (id int PRIMARY KEY); INSERT INTO later VALUES (1), (2);");
  std::map<std::string, int64_t> before = rows_read(src);

  RunResult r = run_pgseed({"sync", "--source", src.conninfo(), "--store", store, "-j", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming the interrupted initial copy"), std::string::npos) << r.err;
  std::map<std::string, int64_t> after = rows_read(src);
  EXPECT_EQ(after["big"], before["big"]) << "big was read again: " << r.err;
  EXPECT_GT(after["small1"], before["small1"]);
  EXPECT_GT(after["k"], before["k"]);
  std::printf("resume: rows read again from the source by the second run: big %lld (of 100000), "
              "small1 %lld, small2 %lld, k %lld\n",
              (long long)(after["big"] - before["big"]), (long long)(after["small1"] - before["small1"]),
              (long long)(after["small2"] - before["small2"]), (long long)(after["k"] - before["k"]));

  EXPECT_EQ(src.db().value("SELECT slot_name FROM pg_replication_slots WHERE database = current_database()"), slot);
  src.db().exec("INSERT INTO k SELECT generate_series(1101, 1200); UPDATE big SET pad = 'x' WHERE id < 5;");
  sync_ok(src, store);
  expect_replica_equal(src, store);
  EXPECT_EQ(src.db().value("SELECT count(*) FROM k"), "1043");
}

// Killed twice: once a table is committed, then in the resumed run once the rest is
// committed but before the copy phase ends. The third run finds every table copied.
TEST_P(ResumeCopyTest, KilledTwiceEndsEqual) {
  TestDatabase src;
  make_source(src);
  std::string store = temp_store(GetParam());
  sync_killed_at(src, store, "copy-tables-committed", {"--publication", "p", "-j", "1"});
  src.db().exec("INSERT INTO k SELECT generate_series(1001, 1100); UPDATE small2 SET v = 0 WHERE id < 100;");
  sync_killed_at(src, store, "copy-tables-committed");
  src.db().exec("DELETE FROM k WHERE n % 5 = 0; DELETE FROM big WHERE id > 99000;");
  std::map<std::string, int64_t> before = rows_read(src);
  sync_ok(src, store);
  std::map<std::string, int64_t> after = rows_read(src);
  for (const auto& [t, n] : after) EXPECT_EQ(n, before[t]) << t << " was read again";
  expect_replica_equal(src, store);
  EXPECT_EQ(src.db().value("SELECT count(*) FROM k"), "880");
}

// Killed before any table's copy was committed: the next run copies everything (under the
// kept slot), equal.
TEST_P(ResumeCopyTest, KilledBeforeAnyTableEndsEqual) {
  TestDatabase src;
  make_source(src);
  std::string store = temp_store(GetParam());
  // The first batch of rows goes into the store, nothing is committed yet.
  sync_killed_at(src, store, "copy-batch-stored", {"--publication", "p", "-j", "1"});
  src.db().exec("INSERT INTO k SELECT generate_series(1001, 1100); DELETE FROM big WHERE id % 3 = 0;");
  sync_ok(src, store);
  expect_replica_equal(src, store);
  EXPECT_EQ(src.db().value("SELECT count(*) FROM k"), "1100");
}

INSTANTIATE_TEST_SUITE_P(Stores, ResumeCopyTest, ::testing::ValuesIn(test_support::kStoreKinds),
                         [](const auto& info) { return info.param; });

}  // namespace pgseed::test
