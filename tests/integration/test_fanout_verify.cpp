// Fan-out (#17): verify and the library's callbacks on edges, as on any store.
//   - verify --from on a SQLite and a RocksDB edge while the hub follows and a writer writes,
//     then on a quiet source (nothing the hub stores is written: the stream reaches the
//     verify's point only through the hub's position messages): exit 0, the edges equal;
//   - verify of an edge whose hub is stopped: one line, non-zero, the hub's slot untouched,
//     and the edge whole (it follows on and verifies once the hub is back);
//   - an edge's library Sync calls on_commit with the transactions it applies (count, LSNs,
//     keys) after they are durable, and on_progress.
#include <signal.h>

#include <atomic>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fanout_support.h"
#include "harness.h"
#include "nats_cluster.h"
#include "replica_compare.h"
#include "stream_support.h"
#include "pgseed/replica.h"
#include "pgseed/sync.h"

namespace pgseed::test {
namespace {

int count_slots(TestDatabase& src) {
  return std::stoi(src.db().value("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"));
}

bool one_line(const RunResult& r) { return !r.err.empty() && r.err.find('\n') == r.err.size() - 1; }

TEST(FanOutVerify, EdgesVerifyWhileTheHubFollowsAndTheSourceIsWrittenOrQuiet) {
  TestDatabase src;
  src.db().exec(std::string(kWorkloadSchema) +
                "CREATE TABLE other (id serial PRIMARY KEY, v text);"  // not published
                "CREATE PUBLICATION p FOR TABLE acct, events;");
  NatsCluster nats(1);
  const std::string stream = "verify_" + src.name();
  const std::string from = nats.urls() + "/" + stream;
  const std::string hub = temp_store("sqlite");
  const std::string hub_log = temp_log_path();
  int hub_pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", hub, "--publication", "p", "--slot",
                              "hub_" + src.name(), "--follow", "--publish", nats.urls(), "--stream", stream},
                             hub_log);
  ASSERT_TRUE(wait_hub_snapshot(hub_log)) << read_text(hub_log);
  const std::vector<std::string> edges = {temp_store("sqlite"), temp_store("rocksdb")};
  for (const auto& e : edges) {
    RunResult r = run_pgseed({"sync", "--from", from, "--store", e});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // A writer on a connection of its own, throughout the first verifies.
  std::atomic<bool> writing{true};
  std::atomic<int> written{0};
  std::thread writer([&] {
    Db db(src.conninfo());
    std::mt19937 rng(41);
    for (int i = 0; writing; ++i) {
      db.exec(workload_txn(i, rng));
      ++written;
    }
  });
  ASSERT_TRUE(wait_until([&] { return written >= 20; }, 60));
  for (const auto& e : edges) {
    SCOPED_TRACE(e);
    int before = written;
    RunResult v = run_pgseed({"verify", "--source", src.conninfo(), "--store", e, "--from", from});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    EXPECT_NE(v.out.find("all tables equal"), std::string::npos) << v.out;
    EXPECT_GT(written.load(), before) << "the writer wrote nothing during verify";
  }
  writing = false;
  writer.join();

  // Quiet: only a table the hub does not store is written. Each verify's point is then past
  // the stream's last transaction; the hub's position messages carry the stream past it.
  for (const auto& e : edges) {
    SCOPED_TRACE(e);
    src.db().exec("INSERT INTO other (v) VALUES ('not published')");
    RunResult v = run_pgseed({"verify", "--source", src.conninfo(), "--store", e, "--from", from});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    EXPECT_NE(v.err.find("following NATS stream " + stream), std::string::npos) << v.err;
    // Nothing published has changed since the writer stopped: the edge, as verify left it,
    // equals the source now.
    expect_workload_equal(src, e);
    EXPECT_EQ(stored(e), published(src.db()));
  }
  // The hub's slot is the only one (verify's temporary slots went with their connections).
  EXPECT_EQ(count_slots(src), 1);
  kill(hub_pid, SIGTERM);
  EXPECT_EQ(wait_pid(hub_pid), 0) << read_text(hub_log);
}

TEST(FanOutVerify, EdgeWhoseHubIsStoppedGetsOneLineAndStaysWhole) {
  TestDatabase src;
  src.db().exec(std::string(kWorkloadSchema) + "CREATE PUBLICATION p FOR TABLE acct, events;");
  NatsCluster nats(1);
  const std::string stream = "stopped_" + src.name();
  const std::string from = nats.urls() + "/" + stream;
  const std::string slot = "hub_" + src.name();
  const std::string hub = temp_store("sqlite");
  const std::vector<std::string> hub_args = {"sync", "--source", src.conninfo(), "--store", hub, "--publication",
                                             "p", "--slot", slot, "--publish", nats.urls(), "--stream", stream};
  std::mt19937 rng(43);
  int i = 0;
  auto write = [&](int n) {
    for (int end = i + n; i < end; ++i) src.db().exec(workload_txn(i, rng));
  };
  write(10);
  RunResult r = run_pgseed(hub_args);  // one-shot: copies, publishes the snapshot, stops
  ASSERT_EQ(r.exit_code, 0) << r.err;
  write(10);
  ASSERT_EQ(run_pgseed(hub_args).exit_code, 0);  // publishes those 10, stops
  const std::string edge = temp_store("rocksdb");
  r = run_pgseed({"sync", "--from", from, "--store", edge});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // The hub is not running; the source goes on. verify cannot know that the stream holds
  // everything before its point: one line naming the stream, after --hub-wait seconds
  // without a message.
  write(10);
  const std::string confirmed = slot_confirmed(src.db(), slot);
  const std::string edge_lsn = applied_lsn(edge);
  r = run_pgseed({"-q", "verify", "--source", src.conninfo(), "--store", edge, "--from", from, "--hub-wait", "2"});
  EXPECT_EQ(r.exit_code, 6) << r.out << r.err;
  EXPECT_TRUE(one_line(r)) << r.err;
  EXPECT_NE(r.err.find("NATS stream " + stream), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is its hub"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  // Neither the hub's slot nor the edge moved (the edge had everything the stream holds).
  EXPECT_EQ(slot_confirmed(src.db(), slot), confirmed);
  EXPECT_EQ(applied_lsn(edge), edge_lsn);
  EXPECT_EQ(count_slots(src), 1);

  // The edge is whole: with the hub back (following), it catches up and verifies.
  const std::string hub_log = temp_log_path();
  std::vector<std::string> follow = hub_args;
  follow.push_back("--follow");
  int hub_pid = spawn_pgseed(follow, hub_log);
  r = run_pgseed({"verify", "--source", src.conninfo(), "--store", edge, "--from", from});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  expect_workload_equal(src, edge);
  kill(hub_pid, SIGTERM);
  EXPECT_EQ(wait_pid(hub_pid), 0) << read_text(hub_log);
  EXPECT_EQ(count_slots(src), 1);
}

// The library on an edge: Sync with SyncOptions::from calls on_commit once per transaction
// it applies, after the store commit that holds it, with its commit LSN and the keys it
// touched, as a Sync from the source does (test_library.cpp); on_progress reports the
// stream phase.
TEST(FanOutLibrary, EdgeSyncCallsOnCommitForEachTransactionItApplies) {
  TestDatabase src;
  src.db().exec(
      "CREATE TABLE products (id integer PRIMARY KEY, name text NOT NULL);"
      "CREATE TABLE stock (warehouse text, product_id integer, qty integer NOT NULL,"
      "                    PRIMARY KEY (product_id, warehouse));"
      "INSERT INTO products VALUES (1, 'one'), (2, 'two'), (10, 'ten');"
      "INSERT INTO stock VALUES ('south', 1, 0);"
      "CREATE PUBLICATION p FOR TABLE products, stock;");
  NatsCluster nats(1);
  const std::string stream = "lib_" + src.name();
  const std::string hub = temp_store("sqlite");
  const std::string hub_log = temp_log_path();
  int hub_pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", hub, "--publication", "p", "--follow",
                              "--publish", nats.urls(), "--stream", stream},
                             hub_log);
  ASSERT_TRUE(wait_hub_snapshot(hub_log)) << read_text(hub_log);

  Lsn first_kind_end;  // the WAL position after the first kind's transactions
  for (const std::string kind : {"sqlite", "rocksdb"}) {
    SCOPED_TRACE(kind);
    const std::string edge = temp_store(kind);
    SyncOptions o;
    o.from = nats.urls() + "/" + stream;
    o.store = edge;
    std::mutex mu;
    std::vector<AppliedTransaction> txns;
    o.on_commit = [&](const AppliedTransaction& t) {
      // Called once the transaction is durable: a new reader already finds it stored
      // (RocksDB admits one process-wide user of the store).
      if (kind == "sqlite") {
        EXPECT_GT(Replica::open(edge)->state().applied_lsn, t.commit_lsn);
      }
      std::lock_guard lock(mu);
      txns.push_back(t);
    };
    // The first run restores the hub's snapshot (rows: no callback), then applies the
    // transactions published after it: none the first time, the four of the first kind's
    // run the second time.
    ASSERT_TRUE(Sync(o).run());
    EXPECT_EQ(txns.size(), kind == "sqlite" ? 0u : 4u);
    for (const auto& t : txns) {
      EXPECT_LT(t.commit_lsn, first_kind_end);
    }
    txns.clear();

    std::atomic<bool> saw_progress{false};
    o.follow = true;
    o.on_progress = [&](const Progress& p) {
      if (p.phase == Progress::Phase::kStream && p.applied_lsn.valid()) saw_progress = true;
    };
    Sync sync(o);
    std::exception_ptr error;
    std::thread runner([&] {
      try {
        sync.run();
      } catch (...) {
        error = std::current_exception();
      }
    });
    // Four transactions; the WAL position around each bounds its commit LSN.
    const int base = kind == "sqlite" ? 100 : 200;
    auto lsn = [&] { return Lsn::parse(src.db().value("SELECT pg_current_wal_lsn()")); };
    std::vector<Lsn> bounds{lsn()};
    for (const std::string& sql : std::vector<std::string>{
             "INSERT INTO products VALUES (" + std::to_string(base) + ", 'new')",
             "BEGIN; UPDATE products SET name = 'uno' WHERE id = 1;"
             "UPDATE stock SET qty = 8 WHERE product_id = 1 AND warehouse = 'south'; COMMIT",
             "UPDATE products SET id = " + std::to_string(base + 1) + " WHERE id = " + std::to_string(base),
             "DELETE FROM products WHERE id = " + std::to_string(base + 1),
         }) {
      src.db().exec(sql);
      bounds.push_back(lsn());
    }
    EXPECT_TRUE(wait_until([&] { std::lock_guard lock(mu); return txns.size() >= 4 || error; }, 60));
    EXPECT_TRUE(wait_until([&] { return saw_progress.load() || error; }, 30)) << "no stream progress report";
    sync.stop();
    runner.join();
    if (error) std::rethrow_exception(error);

    ASSERT_EQ(txns.size(), 4u);
    for (size_t k = 0; k < txns.size(); ++k) {
      EXPECT_GE(txns[k].commit_lsn, bounds[k]) << "transaction " << k;
      EXPECT_LT(txns[k].commit_lsn, bounds[k + 1]) << "transaction " << k;
      EXPECT_FALSE(txns[k].commit_time.empty());
    }
    using Change = AppliedTransaction::Change;
    auto expect_change = [](const Change& c, const std::string& table, ChangeKind kind,
                            const std::vector<std::string>& key) {
      EXPECT_EQ(c.table, table);
      EXPECT_EQ(c.kind, kind) << c.table;
      EXPECT_EQ(c.key, key) << c.table << " " << to_string(c.kind);
    };
    ASSERT_EQ(txns[0].changes.size(), 1u);
    expect_change(txns[0].changes[0], "public.products", ChangeKind::kInsert, {std::to_string(base)});
    ASSERT_EQ(txns[1].changes.size(), 2u);
    expect_change(txns[1].changes[0], "public.products", ChangeKind::kUpdate, {"1"});
    expect_change(txns[1].changes[1], "public.stock", ChangeKind::kUpdate, {"1", "south"});  // key order
    // The key changed: the old key's delete first, as from the source.
    ASSERT_EQ(txns[2].changes.size(), 2u);
    expect_change(txns[2].changes[0], "public.products", ChangeKind::kDelete, {std::to_string(base)});
    expect_change(txns[2].changes[1], "public.products", ChangeKind::kUpdate, {std::to_string(base + 1)});
    ASSERT_EQ(txns[3].changes.size(), 1u);
    expect_change(txns[3].changes[0], "public.products", ChangeKind::kDelete, {std::to_string(base + 1)});
    EXPECT_GT(Replica::open(edge)->state().applied_lsn, txns.back().commit_lsn);
    first_kind_end = bounds.back();

    // Nothing new: no callback.
    txns.clear();
    o.follow = false;
    o.on_progress = {};
    ASSERT_TRUE(Sync(o).run());
    EXPECT_TRUE(txns.empty());
  }
  kill(hub_pid, SIGTERM);
  EXPECT_EQ(wait_pid(hub_pid), 0) << read_text(hub_log);
  run_pgseed({"drop", "--source", src.conninfo(), "--store", hub});
}

}  // namespace
}  // namespace pgseed::test
