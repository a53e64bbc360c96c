// The initial copy of one table by several workers at once, in ranges of heap blocks
// (SyncOptions::split_tables_larger_than, --split-tables-larger-than): rows read exactly
// once under a concurrent writer, keyless tables with duplicates, row filters and column
// lists, partitioned roots copied whole, progress, the lock that keeps an ALTER from
// deadlocking the copy, and the option's errors. Each test on a database of its own,
// against both stores.
#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <mutex>
#include <regex>
#include <thread>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

#include "store_kinds.h"
#include "harness.h"
#include "pg/catalog.h"
#include "pg/connection.h"
#include "pgseed/sync.h"

namespace pgseed::test {
namespace {

using namespace std::chrono_literals;

class SplitCopyTest : public StoreTest {};

// A library sync with a tiny split threshold; keeps the log lines and the last copy
// progress report.
struct SplitSync {
  SyncOptions options;
  std::mutex mu;
  std::vector<std::string> log;
  Progress last_copy_progress;

  SplitSync(TestDatabase& src, const std::string& store, uint64_t split_bytes, int jobs = 2) {
    options.source = src.conninfo();
    options.store = store;
    options.jobs = jobs;
    options.split_tables_larger_than = split_bytes;
    options.all_tables = true;
    options.log = [this](LogLevel, std::string_view m) {
      std::lock_guard lock(mu);
      log.emplace_back(m);
    };
    options.on_progress = [this](const Progress& p) {
      if (p.phase != Progress::Phase::kCopy) return;
      std::lock_guard lock(mu);
      last_copy_progress = p;
    };
  }

  void run() {
    Sync s(options);
    s.run();
  }

  bool logged(const std::string& pattern) {
    std::lock_guard lock(mu);
    std::regex re(pattern);
    for (const auto& l : log)
      if (std::regex_search(l, re)) return true;
    return false;
  }

  std::string all_log() {
    std::lock_guard lock(mu);
    std::string s;
    for (const auto& l : log) s += l + "\n";
    return s;
  }

  const Progress::Table* table(const std::string& name) {
    for (const auto& t : last_copy_progress.tables)
      if (t.name == name) return &t;
    return nullptr;
  }
};

int64_t count(TestDatabase& src, const std::string& sql) { return std::stoll(src.db().value(sql)); }

// The keyed table is updated, deleted from and inserted into while it is copied: updated
// and new row versions land in other blocks (often in ranges other workers read), so a
// range scan that did not respect the snapshot would copy a row twice or miss one. The
// keyless table gets appended to: each of its rows is stored as a row of its own, so the
// store equals the source as a multiset only if every range read exactly the rows of the
// snapshot, duplicates included.
TEST_P(SplitCopyTest, SplitTablesUnderAConcurrentWriterEqualTheSource) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TABLE big (id bigint PRIMARY KEY, n int NOT NULL, pad text);
    INSERT INTO big SELECT i, 0, repeat(md5(i::text), 2) FROM generate_series(1, 60000) i;
    CREATE TABLE dup (a int, b text);
    ALTER TABLE dup REPLICA IDENTITY FULL;
    INSERT INTO dup SELECT i % 100, CASE WHEN i % 7 = 0 THEN NULL ELSE 'x' || (i % 10) END
      FROM generate_series(1, 40000) i;
    CREATE TABLE small (id int PRIMARY KEY, v text);
    INSERT INTO small VALUES (1, 'one'), (2, 'two');
    ANALYZE;
  )SQL");
  int64_t dup_before = count(src, "SELECT count(*) FROM dup");

  std::atomic<bool> stop{false};
  std::atomic<int64_t> written{0};
  std::thread writer([&] {
    Db w(src.conninfo());
    for (int64_t n = 1; !stop; ++n) {
      int64_t id = 1 + (n * 7919) % 60000;
      w.exec("BEGIN;"
             "UPDATE big SET n = n + 1, pad = pad || 'u' WHERE id = " + std::to_string(id) + ";"
             "DELETE FROM big WHERE id = " + std::to_string(1 + (n * 104729) % 60000) + ";"
             "INSERT INTO big VALUES (" + std::to_string(100000 + n) + ", 1, 'new');"
             "INSERT INTO dup VALUES (" + std::to_string(n % 100) + ", 'x1');"
             "COMMIT;");
      written = n;
    }
  });
  while (written < 20) std::this_thread::sleep_for(5ms);

  std::string store = temp_store(store_kind());
  SplitSync sync(src, store, 64 << 10);
  sync.run();
  stop = true;
  writer.join();

  EXPECT_TRUE(sync.logged("copying public\\.big in [0-9]+ parts")) << sync.all_log();
  EXPECT_TRUE(sync.logged("copying public\\.dup in [0-9]+ parts")) << sync.all_log();
  EXPECT_FALSE(sync.logged("copying public\\.small in")) << sync.all_log();
  // Progress: every table done, per-table rows adding up to the total.
  uint64_t sum = 0;
  for (const auto& t : sync.last_copy_progress.tables) {
    EXPECT_TRUE(t.done) << t.name;
    sum += t.rows;
  }
  EXPECT_EQ(sum, sync.last_copy_progress.rows);
  ASSERT_NE(sync.table("public.dup"), nullptr);
  EXPECT_GE(int64_t(sync.table("public.dup")->rows), dup_before);
  ASSERT_NE(sync.table("public.small"), nullptr);
  EXPECT_EQ(sync.table("public.small")->rows, 2u);

  sync_ok(src, store);  // catch up with what the writer did after the first sync's target
  expect_table_equal(src, store, "public.big");
  expect_table_equal(src, store, "public.dup");
  expect_table_equal(src, store, "public.small");
  EXPECT_EQ(count(src, "SELECT count(*) FROM dup"), dup_before + written);
}

TEST_P(SplitCopyTest, RowFilterAndColumnListApplyToEveryRange) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TABLE t (a int PRIMARY KEY, b text, c text, secret text);
    INSERT INTO t SELECT i, 'b' || i, repeat('c', 50), 'hidden' FROM generate_series(1, 30000) i;
    CREATE PUBLICATION p FOR TABLE t (a, b, c) WHERE (a % 3 = 0 OR a % 10 = 7);
  )SQL");
  std::string store = temp_store(store_kind());
  SplitSync sync(src, store, 64 << 10, 3);
  sync.options.publication = "p";
  sync.options.all_tables = false;
  sync.run();
  EXPECT_TRUE(sync.logged("copying public\\.t in 12 parts")) << sync.all_log();
  expect_dump_equals(src, store, "public.t", "SELECT a, b, c FROM t WHERE a % 3 = 0 OR a % 10 = 7");
  ASSERT_NE(sync.table("public.t"), nullptr);
  EXPECT_TRUE(sync.table("public.t")->done);
  EXPECT_EQ(int64_t(sync.table("public.t")->rows),
            count(src, "SELECT count(*) FROM t WHERE a % 3 = 0 OR a % 10 = 7"));

  // The ranges are read with a TID Range Scan, filter and all.
  pg::Connection conn = pg::Connection::open(src.conninfo());
  conn.exec("BEGIN");
  auto tables = pg::published_tables(conn, "p");
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables[0].relkind, 'r');
  EXPECT_GT(tables[0].heap_blocks, 8);
  for (auto range : {pg::BlockRange{0, 4}, pg::BlockRange{4, 8}, pg::BlockRange{8, 0}}) {
    std::string q = pg::copy_query(tables[0], range);
    ASSERT_EQ(q.rfind("COPY (", 0), 0u) << q;
    std::string select = q.substr(6, q.size() - 6 - std::string(") TO STDOUT").size());
    pg::Result r = conn.exec("EXPLAIN (COSTS OFF) " + select);
    std::string plan;
    for (int i = 0; i < PQntuples(r.get()); ++i) plan += std::string(PQgetvalue(r.get(), i, 0)) + "\n";
    EXPECT_NE(plan.find("Tid Range Scan"), std::string::npos) << select << "\n" << plan;
  }
  conn.exec("COMMIT");

  src.db().exec("INSERT INTO t VALUES (30003, 'b', 'c', 's'), (30004, 'b', 'c', 's');"
                "UPDATE t SET b = 'changed' WHERE a = 3;");
  sync_ok(src, store);
  expect_dump_equals(src, store, "public.t", "SELECT a, b, c FROM t WHERE a % 3 = 0 OR a % 10 = 7");
}

// Published via the root, a partitioned table is one store table read through its root:
// not split (no ctid ranges across partitions). Published per leaf, the leaves are plain
// tables and are split. Through the CLI option.
TEST_P(SplitCopyTest, PartitionedRootIsCopiedWholeLeavesAreSplit) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TABLE m (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
    CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (100);
    CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (100) TO (200);
    INSERT INTO m SELECT i, i % 200, repeat('v', 40) || i FROM generate_series(1, 40000) i;
    CREATE PUBLICATION proot FOR TABLE m WITH (publish_via_partition_root = true);
    CREATE PUBLICATION pleaf FOR TABLE m WITH (publish_via_partition_root = false);
  )SQL");
  std::string root_store = temp_store(store_kind());
  RunResult r = run_pgseed({"sync", "--source", src.conninfo(), "--store", root_store,
                            "--publication", "proot", "-j", "2", "--split-tables-larger-than",
                            "64kB"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find(" parts of "), std::string::npos) << r.err;
  expect_table_equal(src, root_store, "public.m");

  std::string leaf_store = temp_store(store_kind());
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", leaf_store, "--publication",
                  "pleaf", "-j", "2", "--split-tables-larger-than", "64 kB"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("copying public.m1 in 8 parts"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("copying public.m2 in 8 parts"), std::string::npos) << r.err;
  for (const char* leaf : {"m1", "m2"})
    expect_dump_equals(src, leaf_store, std::string("public.") + leaf,
                       std::string("SELECT * FROM ONLY ") + leaf);

  // 0 disables splitting.
  std::string whole_store = temp_store(store_kind());
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", whole_store, "--publication",
                  "pleaf", "-j", "2", "--split-tables-larger-than", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find(" parts of "), std::string::npos) << r.err;
  expect_dump_equals(src, whole_store, "public.m1", "SELECT * FROM ONLY m1");
}

// A session asking for ACCESS EXCLUSIVE on a table while its parts are being copied must
// neither deadlock the copy nor be granted before the copy ends. Without the up-front
// locks: worker A reads a part of `t` and keeps its ACCESS SHARE lock; the LOCK below
// queues behind A; worker B, done with `m`, asks for a part of `t` and queues behind the
// LOCK, which waits for A's transaction, which ends only when B is done: a hang.
TEST_P(SplitCopyTest, ExclusiveLockRequestDuringASplitCopyDoesNotDeadlock) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TABLE t (id int PRIMARY KEY, pad text);
    INSERT INTO t SELECT i, repeat(md5(i::text), 2) FROM generate_series(1, 240000) i;
    CREATE TABLE m (id int, k int, pad text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
    CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (1000);
    INSERT INTO m SELECT i, i % 1000, repeat(md5(i::text), 2) FROM generate_series(1, 90000) i;
    CREATE PUBLICATION p FOR TABLE t, m WITH (publish_via_partition_root = true);
    ANALYZE;
  )SQL");
  std::string store = temp_store(store_kind());
  std::string log_path = store.substr(store.find(':') + 1) + ".log";
  int pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--publication",
                          "p", "-j", "2", "--split-tables-larger-than", "64kB"},
                         log_path);
  // As soon as a part of `t` is being copied, ask for an exclusive lock on it.
  bool asked = false;
  std::thread locker;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (src.db().value("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND query LIKE 'COPY %ctid%' AND query LIKE '%public.t %'") != "0") {
      asked = true;
      locker = std::thread([&] {
        Db l(src.conninfo());
        l.exec("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; COMMIT;");
      });
      break;
    }
    if (waitpid(pid, nullptr, WNOHANG) == pid) break;
    std::this_thread::sleep_for(2ms);
  }
  // The sync must finish; a hang shows up as a kill after the deadline.
  int code = -1;
  auto finish_by = std::chrono::steady_clock::now() + 120s;
  int status = 0;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (std::chrono::steady_clock::now() > finish_by) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "the sync hung with an exclusive lock request queued on a split table";
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  if (!asked || code != 0) {
    // Unblock the locker (it would wait for the killed sync's connections otherwise).
    src.db().exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  }
  if (locker.joinable()) locker.join();
  EXPECT_TRUE(asked) << "the copy of t was not seen in pg_stat_activity: the test did not exercise the lock";
  ASSERT_EQ(code, 0);
  expect_table_equal(src, store, "public.t");
  expect_table_equal(src, store, "public.m");
}

// stop() while several workers read parts of one table: the copy is abandoned promptly
// (every worker cancelled), nothing is kept, and a new run starts over.
TEST_P(SplitCopyTest, StopDuringASplitCopyKeepsNothing) {
  TestDatabase src;
  src.db().exec("CREATE TABLE big (id int PRIMARY KEY, pad text);"
                "INSERT INTO big SELECT i, repeat('p', 200) FROM generate_series(1, 300000) i;");
  std::string store = temp_store(store_kind());
  SplitSync split(src, store, 1 << 20);
  split.options.follow = true;
  StoppedCopy r = stop_mid_copy(split.options);
  ASSERT_TRUE(r.stopped_mid_copy) << "the copy stored no batch";
  EXPECT_LT(r.seconds, 5.0) << "stop() during the copy took " << r.seconds << " s";
  EXPECT_FALSE(r.error) << "run() threw after stop() during the copy";
  EXPECT_TRUE(split.logged("copying public\\.big in 8 parts")) << split.all_log();
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"), "0");
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND query LIKE 'COPY %ctid%' AND state = 'active'"), "0");
  EXPECT_FALSE(std::filesystem::exists(store.substr(store.find(':') + 1)));
  sync_ok(src, store, {"-j", "2", "--split-tables-larger-than", "1MB"});
  expect_table_equal(src, store, "public.big");
}

INSTANTIATE_TEST_SUITE_P(Stores, SplitCopyTest, ::testing::ValuesIn(test_support::kStoreKinds));

TEST(SplitCopyOption, InvalidSizesAreOneConfigurationErrorLine) {
  std::string store = temp_store("sqlite");
  for (const char* bad : {"12XB", "abc", "1.5MB", "--split-tables-larger-than=-1", "MB",
                          "99999999999999999999999"}) {
    std::vector<std::string> args = {"sync", "--source", "host=/nonexistent dbname=x", "--store", store};
    if (std::string(bad).rfind("--", 0) == 0) {
      args.push_back(bad);
    } else {
      args.push_back("--split-tables-larger-than");
      args.push_back(bad);
    }
    RunResult r = run_pgseed(args);
    EXPECT_EQ(r.exit_code, 5) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("--split-tables-larger-than"), std::string::npos) << r.err;
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
  }
}

TEST(SplitCopyOption, HelpDocumentsIt) {
  RunResult r = run_pgseed({"sync", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--split-tables-larger-than"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("default 0: copy every table whole"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace pgseed::test
