// Fan-out through NATS JetStream (#17): a hub holds the only slot and publishes every
// transaction and a snapshot; edges of both store kinds restore the snapshot and follow the
// stream. A real 3-node nats-server cluster (nats_cluster.h), the real pgseed binary, a
// writer on the source; a column added (a resync on the hub, a new snapshot for the edges);
// the hub and an edge are killed (-9) and restarted, the change stream's leader node too; every
// edge ends equal to the source (the key-less table proves nothing is applied twice or
// lost) and verifies, and the source has exactly one slot.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "fanout_support.h"
#include "harness.h"
#include "nats/jet_stream.h"
#include "nats/nats_url.h"
#include "nats_cluster.h"
#include "replica_compare.h"
#include "stream_support.h"

namespace pgseed::test {
namespace {

class FanOut : public StoreTest {};

TEST_P(FanOut, HubAndEdgesFollowAWriterThroughKills) {
  TestDatabase src;
  src.db().exec(std::string(kWorkloadSchema) + "CREATE PUBLICATION p FOR TABLE acct, events;");
  NatsCluster nats(3);
  const std::string stream = "fan_" + src.name();
  const std::string hub = temp_store(store_kind());
  const std::vector<std::string> hub_args = {"sync", "--source", src.conninfo(), "--store", hub,
                                             "--publication", "p", "--slot", "hub_" + src.name(),
                                             "--follow", "--publish", nats.urls(), "--stream", stream};
  const std::vector<std::string> edges = {temp_store("sqlite"), temp_store("rocksdb")};
  auto edge_args = [&](const std::string& e) {
    return std::vector<std::string>{"sync", "--from", nats.urls() + "/" + stream, "--store", e, "--follow"};
  };

  int hub_pid = spawn_pgseed(hub_args, temp_log_path());
  std::vector<int> edge_pids;
  std::vector<std::string> edge_logs;
  for (const auto& e : edges) {
    edge_logs.push_back(temp_log_path());
    edge_pids.push_back(spawn_pgseed(edge_args(e), edge_logs.back()));
  }

  std::mt19937 rng(17);
  int i = 0;
  auto write = [&](int n) {
    for (int end = i + n; i < end; ++i) src.db().exec(workload_txn(i, rng));
  };
  // Both edges restored the hub's first snapshot and follow.
  std::string start = src.db().value("SELECT pg_current_wal_lsn()::text");
  src.db().exec("INSERT INTO acct VALUES (900000, 0, 'edges up')");
  for (size_t k = 0; k < edges.size(); ++k)
    ASSERT_TRUE(wait_applied_past(edges[k], start, 60)) << read_text(edge_logs[k]);

  // Phase 1, no faults: how long transactions take from the source to an edge.
  auto t0 = std::chrono::steady_clock::now();
  write(150);
  const std::string phase1 = src.db().value("SELECT pg_current_wal_lsn()::text");
  src.db().exec("INSERT INTO acct VALUES (900001, 0, 'phase 1 done')");
  ASSERT_TRUE(wait_applied_past(edges[0], phase1, 60)) << read_text(edge_logs[0]);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("fan-out phase 1 (%s hub): 151 transactions written and on the sqlite edge in %.2f s\n",
              store_kind().c_str(), seconds);

  // Phase 2: an edge killed (-9) and restarted, the hub killed (-9) and restarted, a NATS
  // node (the change stream's leader) killed and restarted, while the writer writes.
  write(40);
  // A schema change: the hub copies the table again and publishes a marker and a snapshot,
  // which the edges restore.
  src.db().exec("ALTER TABLE acct ADD COLUMN extra int DEFAULT 5");
  write(20);
  kill(edge_pids[0], SIGKILL);
  wait_pid(edge_pids[0]);
  write(40);
  edge_pids[0] = spawn_pgseed(edge_args(edges[0]), edge_logs[0]);
  write(40);
  kill(hub_pid, SIGKILL);
  wait_pid(hub_pid);
  write(40);
  ASSERT_TRUE(wait_until([&] { return slot_active_pid(src.db(), "hub_" + src.name()).empty(); }, 30));
  hub_pid = spawn_pgseed(hub_args, temp_log_path());
  write(40);
  // The node leading the change stream's replicas: JetStream takes no write to the stream
  // until a new leader is elected (seconds), which the hub waits out.
  int leader = 0;
  {
    nats::JetStream js = nats::JetStream::connect(nats::parse_nats_address(nats.urls(), false), "test");
    std::string name = js.leader(stream);
    ASSERT_EQ(name.rfind('n', 0), 0u) << name;
    leader = std::stoi(name.substr(1)) - 1;
  }
  nats.kill_node(leader);
  write(40);
  nats.restart_node(leader);
  write(40);

  // The last transaction: once an edge holds it, it holds everything before it.
  const std::string last = src.db().value("SELECT pg_current_wal_lsn()::text");
  src.db().exec("INSERT INTO acct VALUES (900002, 0, 'all done')");
  for (const auto& e : edges) EXPECT_TRUE(wait_applied_past(e, last, 60)) << e;
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"), "1");

  for (size_t k = 0; k < edge_pids.size(); ++k) {
    kill(edge_pids[k], SIGTERM);
    EXPECT_EQ(wait_pid(edge_pids[k]), 0) << read_text(edge_logs[k]);
  }
  // Each edge says when its last transaction committed on the source, as the hub says of
  // the same transaction (the hub may publish it just before its own store commits it).
  auto commit_time = [](const std::string& store) {
    return json_field(run_pgseed({"status", "--store", store, "--format", "json"}).out, "last_commit_time");
  };
  for (const auto& e : edges) {
    const std::string edge_time = commit_time(e);
    EXPECT_TRUE(!edge_time.empty() && edge_time != "null") << e << ": " << edge_time;
    EXPECT_TRUE(wait_until([&] { return commit_time(hub) == edge_time; }, 30))
        << e << ": " << edge_time << ", hub: " << commit_time(hub);
  }
  // The edges: every published table, every published column, equal to the source, and
  // verify, which catches an edge up through the stream (the hub still runs) and never
  // through the hub's slot; without --from it is refused (an edge store does not say which
  // stream it follows).
  for (const auto& e : edges) {
    SCOPED_TRACE(e);
    expect_workload_equal(src, e);
    EXPECT_EQ(stored(e), published(src.db()));
    for (const auto& t : published(src.db()))
      expect_dump_equals(src, e, t, "SELECT " + published_columns(src.db(), t) + " FROM " + t);
    RunResult v = run_pgseed({"verify", "--source", src.conninfo(), "--store", e});
    EXPECT_EQ(v.exit_code, 5) << v.err;
    EXPECT_NE(v.err.find("is an edge of a NATS stream"), std::string::npos) << v.err;
    EXPECT_NE(v.err.find("--from"), std::string::npos) << v.err;
    v = run_pgseed({"verify", "--source", src.conninfo(), "--store", e, "--from", nats.urls() + "/" + stream});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  }
  kill(hub_pid, SIGTERM);
  EXPECT_EQ(wait_pid(hub_pid), 0);
  expect_replica_equal(src, hub);
}

INSTANTIATE_TEST_SUITE_P(Stores, FanOut, ::testing::Values("sqlite", "rocksdb"));

// Bad input gets one clear line and a non-zero exit, and a first edge run that fails leaves
// no store behind; an edge store is refused as a --source store (it has no slot), and
// follows (or is verified through) only a stream of the source it was made from.
TEST(FanOutErrors, OneClearLineAndNothingLeftBehind) {
  TestDatabase src;
  src.db().exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1); CREATE PUBLICATION p FOR TABLE t;");
  NatsCluster nats(1);
  auto one_line = [](const RunResult& r) { return r.err.find('\n') == r.err.size() - 1; };

  const std::string edge = temp_store("sqlite");
  const std::string path = edge.substr(edge.find(':') + 1);
  RunResult r = run_pgseed({"sync", "--from", nats.urls() + "/missing", "--store", edge});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(one_line(r)) << r.err;
  EXPECT_NE(r.err.find("NATS stream missing does not exist"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(path));

  r = run_pgseed({"sync", "--from", "nats://u:hunter2@127.0.0.1:1/s", "--store", edge});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(one_line(r)) << r.err;
  EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;

  r = run_pgseed({"sync", "--from", "nats://127.0.0.1:4222", "--store", edge});
  EXPECT_EQ(r.exit_code, 5) << r.err;  // configuration: no stream named
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", edge, "--publish", nats.urls()});
  EXPECT_EQ(r.exit_code, 5) << r.err;  // configuration: --publish without --stream

  // A hub's one-shot run publishes the snapshot; an edge made from it is no --source store.
  const std::string hub = temp_store("sqlite");
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", hub, "--publication", "p",
                  "--publish", nats.urls(), "--stream", "s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_pgseed({"sync", "--from", nats.urls() + "/s", "--store", edge});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_table_equal(src, edge, "public.t");
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", edge});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("is an edge of a NATS stream"), std::string::npos) << r.err;
  // verify --from is for edges; a hub (a store with a slot) is verified through its slot.
  r = run_pgseed({"verify", "--source", src.conninfo(), "--store", hub, "--from", nats.urls() + "/s"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_TRUE(one_line(r)) << r.err;

  // The stream of a hub of another database: neither followed nor used by verify, before
  // anything is applied.
  TestDatabase other;
  other.db().exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (2); CREATE PUBLICATION p FOR TABLE t;");
  const std::string other_hub = temp_store("sqlite");
  r = run_pgseed({"sync", "--source", other.conninfo(), "--store", other_hub, "--publication", "p",
                  "--publish", nats.urls(), "--stream", "s2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_pgseed({"-q", "sync", "--from", nats.urls() + "/s2", "--store", edge});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_TRUE(one_line(r)) << r.err;
  EXPECT_NE(r.err.find("was made from another source"), std::string::npos) << r.err;
  r = run_pgseed({"-q", "verify", "--source", src.conninfo(), "--store", edge, "--from", nats.urls() + "/s2"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_TRUE(one_line(r)) << r.err;
  expect_table_equal(src, edge, "public.t");
  run_pgseed({"drop", "--source", other.conninfo(), "--store", other_hub});
  run_pgseed({"drop", "--source", src.conninfo(), "--store", hub});
}

}  // namespace
}  // namespace pgseed::test
