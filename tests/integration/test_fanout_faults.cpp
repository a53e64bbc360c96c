// Fan-out (#17): the hub killed (-9) at the exact moments where the change stream and the
// hub's store disagree, by failpoints instead of a race with a clock:
//   - hub-published-before-commit: transactions acknowledged by JetStream, not yet in the
//     hub's store (the restarted hub applies them again and must not publish them again);
//   - after-table-sync: a table copied again and stored, its marker not yet published;
//   - hub-marker-published: the marker published, not its snapshot (edges wait for it);
//   - hub-snapshot-chunk-published: a snapshot cut after its first chunk (no end message).
// Each time two edges (SQLite and RocksDB) follow throughout, and a third edge made after
// the faults restores the newest snapshot and reads the stream; every edge ends equal to
// the source (the key-less table shows nothing applied twice or lost), the hub too.
// Also: a source transaction larger than a NATS message (published in parts), and new
// edges of both kinds killed in the middle of their first restore and run again.
#include <signal.h>
#include <stdlib.h>

#include <random>
#include <string>
#include <vector>

#include "fanout_support.h"
#include "harness.h"
#include "nats_cluster.h"
#include "replica_compare.h"
#include "stream_support.h"

namespace pgseed::test {
namespace {

class FanOutFaults : public ::testing::TestWithParam<const char*> {};

TEST_P(FanOutFaults, HubKilledAtAFailpointAndRestarted) {
  const std::string point = GetParam();
  TestDatabase src;
  src.db().exec(std::string(kWorkloadSchema) + "CREATE PUBLICATION p FOR TABLE acct, events;");
  NatsCluster nats(1);
  const std::string stream = "faults_" + src.name();
  const std::string hub = temp_store("sqlite");
  const std::vector<std::string> hub_args = {"sync", "--source", src.conninfo(), "--store", hub,
                                             "--publication", "p", "--slot", "hub_" + src.name(),
                                             "--follow", "--publish", nats.urls(), "--stream", stream};
  auto edge_args = [&](const std::string& e, bool follow) {
    std::vector<std::string> a = {"sync", "--from", nats.urls() + "/" + stream, "--store", e};
    if (follow) a.push_back("--follow");
    return a;
  };
  std::mt19937 rng(29);
  int i = 0;
  auto write = [&](int n) {
    for (int end = i + n; i < end; ++i) src.db().exec(workload_txn(i, rng));
  };
  // Waits until every store in `stores` holds a transaction written after this call.
  auto wait_all = [&](const std::vector<std::string>& stores, const std::vector<std::string>& logs) {
    const std::string before = src.db().value("SELECT pg_current_wal_lsn()::text");
    src.db().exec("INSERT INTO acct VALUES (" + std::to_string(900000 + i++) + ", 0, 'mark')");
    for (size_t k = 0; k < stores.size(); ++k)
      ASSERT_TRUE(wait_applied_past(stores[k], before)) << stores[k] << "\n" << read_text(logs[k]);
  };

  const std::string hub_log = temp_log_path();
  int hub_pid = spawn_pgseed(hub_args, hub_log);
  const std::vector<std::string> edges = {temp_store("sqlite"), temp_store("rocksdb")};
  std::vector<std::string> edge_logs;
  std::vector<int> edge_pids;
  for (const auto& e : edges) {
    edge_logs.push_back(temp_log_path());
    edge_pids.push_back(spawn_pgseed(edge_args(e, true), edge_logs.back()));
  }
  write(30);
  ASSERT_NO_FATAL_FAILURE(wait_all(edges, edge_logs));

  // The hub stops; what happens while it is away makes its next start pass the failpoint:
  // transactions to publish, and (for the table sync's points) a column added to acct,
  // which the restarted hub finds in the catalog and copies acct again for.
  kill(hub_pid, SIGTERM);
  ASSERT_EQ(wait_pid(hub_pid), 0) << read_text(hub_log);
  write(20);
  if (point != "hub-published-before-commit") {
    src.db().exec("ALTER TABLE acct ADD COLUMN extra int DEFAULT 5");
    write(20);
  }
  setenv("PGSEED_FAILPOINT", point.c_str(), 1);
  hub_pid = spawn_pgseed(hub_args, hub_log);
  unsetenv("PGSEED_FAILPOINT");
  ASSERT_EQ(wait_pid(hub_pid), 128 + SIGKILL) << "the hub did not reach " << point << "\n" << read_text(hub_log);
  ASSERT_TRUE(wait_until([&] { return slot_active_pid(src.db(), "hub_" + src.name()).empty(); }, 30));

  write(20);
  hub_pid = spawn_pgseed(hub_args, hub_log);
  write(20);
  ASSERT_NO_FATAL_FAILURE(wait_all(edges, edge_logs));

  // A new edge, after the faults: the newest snapshot and the stream after it.
  const std::string late = temp_store("sqlite");
  RunResult r = run_pgseed(edge_args(late, false));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  kill(hub_pid, SIGTERM);
  EXPECT_EQ(wait_pid(hub_pid), 0) << read_text(hub_log);
  for (size_t k = 0; k < edge_pids.size(); ++k) {
    kill(edge_pids[k], SIGTERM);
    EXPECT_EQ(wait_pid(edge_pids[k]), 0) << read_text(edge_logs[k]);
  }
  std::vector<std::string> all = edges;
  all.push_back(late);
  for (const auto& e : all) {
    SCOPED_TRACE(e);
    expect_workload_equal(src, e);
    EXPECT_EQ(stored(e), published(src.db()));
    for (const auto& t : published(src.db()))
      expect_dump_equals(src, e, t, "SELECT " + published_columns(src.db(), t) + " FROM " + t);
  }
  expect_replica_equal(src, hub);
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"), "1");
}

TEST(FanOutLarge, TransactionsInPartsAndEdgesKilledWhileRestoring) {
  TestDatabase src;
  src.db().exec(std::string(kWorkloadSchema) + "CREATE PUBLICATION p FOR TABLE acct, events;");
  NatsCluster nats(1);
  const std::string stream = "large_" + src.name();
  const std::string hub = temp_store("rocksdb");
  const std::string hub_log = temp_log_path();
  int hub_pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", hub, "--publication", "p", "--slot",
                              "hub_" + src.name(), "--follow", "--publish", nats.urls(), "--stream", stream},
                             hub_log);
  auto edge_args = [&](const std::string& e, bool follow) {
    std::vector<std::string> a = {"sync", "--from", nats.urls() + "/" + stream, "--store", e};
    if (follow) a.push_back("--follow");
    return a;
  };
  const std::string following = temp_store("sqlite");
  const std::string following_log = temp_log_path();
  int edge_pid = spawn_pgseed(edge_args(following, true), following_log);
  std::mt19937 rng(37);
  int i = 0;
  for (; i < 20; ++i) src.db().exec(workload_txn(i, rng));
  // ~5 MB of changes in one transaction: several times NATS's 1 MB message limit.
  src.db().exec("BEGIN; UPDATE acct SET note = repeat('n', 300) || id;"
                "INSERT INTO events SELECT g % 20, repeat('x', 200) || g FROM generate_series(1, 20000) g; COMMIT;");
  for (; i < 40; ++i) src.db().exec(workload_txn(i, rng));
  const std::string before = src.db().value("SELECT pg_current_wal_lsn()::text");
  src.db().exec("INSERT INTO acct VALUES (900000, 0, 'last')");
  ASSERT_TRUE(wait_applied_past(following, before, 120))
      << read_text(following_log) << read_text(hub_log);

  // New edges, killed after the first chunk of their first restore, then run again.
  std::vector<std::string> late = {temp_store("sqlite"), temp_store("rocksdb")};
  for (const auto& e : late) {
    setenv("PGSEED_FAILPOINT", "edge-snapshot-chunk-restored", 1);
    RunResult r = run_pgseed(edge_args(e, false));
    unsetenv("PGSEED_FAILPOINT");
    ASSERT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
    r = run_pgseed(edge_args(e, false));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("restoring the snapshot"), std::string::npos) << r.err;
  }

  kill(hub_pid, SIGTERM);
  EXPECT_EQ(wait_pid(hub_pid), 0) << read_text(hub_log);
  kill(edge_pid, SIGTERM);
  EXPECT_EQ(wait_pid(edge_pid), 0) << read_text(following_log);
  std::vector<std::string> all = late;
  all.push_back(following);
  for (const auto& e : all) {
    SCOPED_TRACE(e);
    expect_workload_equal(src, e);
  }
  expect_replica_equal(src, hub);
}

INSTANTIATE_TEST_SUITE_P(Points, FanOutFaults,
                         ::testing::Values("hub-published-before-commit", "after-table-sync",
                                           "hub-marker-published", "hub-snapshot-chunk-published"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace pgseed::test
