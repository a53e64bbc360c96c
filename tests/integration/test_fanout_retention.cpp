// Fan-out (#17) retention: a hub with --snapshot-every publishes snapshots while a writer
// writes, keeps the two newest and removes what is older from both JetStream streams. An
// edge that follows throughout ends equal to the source; an edge left behind the older kept
// snapshot says the stream no longer holds what it needs, restores the newest snapshot and
// ends equal too. The test waits on the hub's own log lines (each snapshot, each removal),
// not on the clock.
#include <signal.h>

#include <random>
#include <string>
#include <vector>

#include "fanout_support.h"
#include "harness.h"
#include "nats/jet_stream.h"
#include "nats/nats_url.h"
#include "nats_cluster.h"
#include "replica_compare.h"
#include "stream_support.h"

namespace pgseed::test {
namespace {

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(FanOutRetention, PeriodicSnapshotsKeepTheTwoNewestAndEdgesBehindRestoreTheNewest) {
  TestDatabase src;
  src.db().exec(std::string(kWorkloadSchema) + "CREATE PUBLICATION p FOR TABLE acct, events;");
  NatsCluster nats(1);
  const std::string stream = "ret_" + src.name();
  const std::string hub = temp_store("sqlite");
  const std::string hub_log = temp_log_path();
  int hub_pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", hub, "--publication", "p", "--slot",
                              "hub_" + src.name(), "--follow", "--publish", nats.urls(), "--stream", stream,
                              "--snapshot-every", "1s"},
                             hub_log);
  auto edge_args = [&](const std::string& e, bool follow) {
    std::vector<std::string> a = {"sync", "--from", nats.urls() + "/" + stream, "--store", e};
    if (follow) a.push_back("--follow");
    return a;
  };
  std::mt19937 rng(31);
  int i = 0;
  ASSERT_TRUE(wait_hub_snapshot(hub_log)) << read_text(hub_log);

  // One edge restores the first snapshot and stops there; another follows throughout.
  const std::string behind = temp_store("rocksdb");
  RunResult r = run_pgseed(edge_args(behind, false));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string following = temp_store("sqlite");
  const std::string following_log = temp_log_path();
  int edge_pid = spawn_pgseed(edge_args(following, true), following_log);

  // Writes until the hub has removed old snapshots and changes twice (3+ snapshots).
  ASSERT_TRUE(wait_until(
      [&] {
        src.db().exec(workload_txn(i++, rng));
        return count_of(read_text(hub_log), "retention: kept") >= 2;
      },
      120))
      << read_text(hub_log);

  // Both streams lost their first messages.
  {
    nats::JetStream js = nats::JetStream::connect(nats::parse_nats_address(nats.urls(), false), "test");
    EXPECT_GT(js.bounds(stream).first_seq, 1u);
    EXPECT_GT(js.bounds(stream + "-snapshots").first_seq, 1u);
  }

  // The hub has published everything once it holds a transaction written last.
  const std::string before = src.db().value("SELECT pg_current_wal_lsn()::text");
  src.db().exec("INSERT INTO acct VALUES (900000, 0, 'last')");
  ASSERT_TRUE(wait_applied_past(hub, before)) << read_text(hub_log);
  ASSERT_TRUE(wait_applied_past(following, before)) << read_text(following_log);

  r = run_pgseed(edge_args(behind, false));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("no longer holds the transactions after"), std::string::npos) << r.err;

  kill(hub_pid, SIGTERM);
  EXPECT_EQ(wait_pid(hub_pid), 0) << read_text(hub_log);
  kill(edge_pid, SIGTERM);
  EXPECT_EQ(wait_pid(edge_pid), 0) << read_text(following_log);
  for (const auto& e : {following, behind}) {
    SCOPED_TRACE(e);
    expect_workload_equal(src, e);
  }
  expect_replica_equal(src, hub);
}

}  // namespace
}  // namespace pgseed::test
