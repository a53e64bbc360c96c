// What stays true under faults (DESIGN.md): kill -9 of pgseed, a PostgreSQL crash, a
// dropped replication connection, and SIGTERM/SIGINT while following. After each, the store
// must equal the source, with nothing applied twice (the key-less `events` table, whose rows
// repeat, has the source's exact row count).
#include <sys/wait.h>

#include <algorithm>

#include <fstream>
#include <sstream>
#include <thread>

#include "store_kinds.h"
#include "stream_support.h"

namespace pgseed::test {

namespace {


std::vector<std::string> follow_args(TestDatabase& src, const std::string& store) {
  return {"sync", "--follow", "--source", src.conninfo(), "--store", store};
}

// Runs transactions [from, to) of the workload on its own connection.
void run_workload(const std::string& conninfo, int from, int to, unsigned seed) {
  Db db(conninfo);
  std::mt19937 rng(seed);
  for (int i = from; i < to; ++i) db.exec(workload_txn(i, rng));
}

// Streams from `slot` on a connection of its own (publication: the slot's name, pgseed's
// default), so that the slot is in use until the connection is closed.
PGconn* hold_slot(TestDatabase& src, const std::string& slot) {
  std::string conninfo = src.conninfo() + " replication=database";
  PGconn* c = PQconnectdb(conninfo.c_str());
  EXPECT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
  std::string cmd = "START_REPLICATION SLOT \"" + slot + "\" LOGICAL 0/0 (proto_version '1', "
                    "publication_names '\"" + slot + "\"')";
  PGresult* r = PQexec(c, cmd.c_str());
  EXPECT_EQ(PQresultStatus(r), PGRES_COPY_BOTH) << PQerrorMessage(c);
  PQclear(r);
  return c;
}

void expect_exact_events(TestDatabase& src, const std::string& store) {
  RunResult r = run_pgseed({"dump", "--store", store, "--table", "public.events", "--format", "csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::to_string(sorted_csv_records(r.out).size()),
            src.db().value("SELECT count(*) FROM events"))
      << "the key-less table has another row count than the source: a change was applied twice or lost";
}

}  // namespace

class FaultTest : public StoreTest {};

// kill -9 at random moments of the initial copy, then sync until it succeeds.
TEST_P(FaultTest, KillDuringCopy) {
  TestDatabase src;
  src.db().exec("CREATE TABLE bulk (id int PRIMARY KEY, v text, n numeric);"
                "INSERT INTO bulk SELECT i, md5(i::text) || md5((i + 1)::text), i * 1.5 "
                "  FROM generate_series(1, 250000) i;");
  src.db().exec(kWorkloadSchema);
  std::string store = temp_store(store_kind());
  std::mt19937 rng(20240601);
  for (int i = 0; i < 6; ++i) {
    int pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--all-tables"},
                           temp_log_path());
    // The first kills land around the creation of the publication and the slot, the
    // others anywhere in the copy.
    int ms = i < 2 ? 60 + int(rng() % 150) : 50 + int(rng() % 1000);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    kill(pid, SIGKILL);
    wait_pid(pid);
    // The source moves on between attempts.
    std::mt19937 wrng(i);
    src.db().exec(workload_txn(i, wrng));
  }
  sync_until_ok(src, store);
  expect_table_equal(src, store, "public.bulk");
  expect_workload_equal(src, store);
  expect_exact_events(src, store);
  // Discarded copies leave no slot behind (only the store's slot retains WAL), and no
  // publication but the store's.
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"),
            "1");
  EXPECT_EQ(src.db().value("SELECT string_agg(pubname, ',') FROM pg_publication"),
            store_status(store).slot);
}

// kill -9 at random moments while streaming a workload of small and large transactions.
TEST_P(FaultTest, KillDuringStreaming) {
  TestDatabase src;
  src.db().exec(kWorkloadSchema);
  std::string store = temp_store(store_kind());
  sync_ok(src, store);

  std::thread workload(run_workload, src.conninfo(), 0, 600, 7u);
  std::mt19937 rng(424242);
  for (int i = 0; i < 5; ++i) {
    int pid = spawn_pgseed(follow_args(src, store), temp_log_path());
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 700));
    kill(pid, SIGKILL);
    wait_pid(pid);
  }
  workload.join();
  // And once more with everything written: killed while catching up.
  int pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", store}, temp_log_path());
  std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 300));
  kill(pid, SIGKILL);
  wait_pid(pid);

  sync_until_ok(src, store);
  expect_workload_equal(src, store);
  expect_exact_events(src, store);
}

// PostgreSQL crashes (immediate shutdown) while `--follow` streams; it comes back; pgseed
// reconnects by itself.
TEST_P(FaultTest, ServerCrashWhileFollowing) {
  TestDatabase src;
  src.db().exec(kWorkloadSchema);
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  std::string slot = store_status(store).slot;
  std::string log = temp_log_path();
  int pid = spawn_pgseed(follow_args(src, store), log);

  run_workload(src.conninfo(), 0, 150, 11u);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  crash_server();
  restart_server();
  PQreset(src.db().get());
  ASSERT_EQ(PQstatus(src.db().get()), CONNECTION_OK);
  src.db().exec("SET TimeZone = UTC; SET DateStyle = ISO; SET IntervalStyle = postgres;"
                "SET extra_float_digits = 3; SET bytea_output = hex");

  run_workload(src.conninfo(), 150, 300, 12u);
  std::string lsn = src.db().value("SELECT pg_current_wal_lsn()::text");
  EXPECT_TRUE(wait_confirmed(src.db(), slot, lsn, 60))
      << "pgseed --follow did not catch up after the server restart; its log:\n" << read_text(log);
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_pid(pid), 0) << read_text(log);
  for (const std::string& line : {std::string("replication connection lost"), std::string("retrying")})
    EXPECT_NE(read_text(log).find(line), std::string::npos) << "no '" << line << "' in:\n" << read_text(log);

  sync_ok(src, store);
  expect_workload_equal(src, store);
  expect_exact_events(src, store);
}

// PostgreSQL restarts cleanly (pg_ctl restart -m fast) while `--follow` streams: the
// walsender ends the stream by itself (or with FATAL 57P01), reconnects meet a server
// that is down or still starting up (57P03). All of that is transient: pgseed waits it
// out, and rows written after the restart reach the store while it still runs.
TEST_P(FaultTest, ServerRestartWhileFollowing) {
  TestDatabase src;
  src.db().exec(kWorkloadSchema);
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  std::string slot = store_status(store).slot;
  std::string log = temp_log_path();
  int pid = spawn_pgseed(follow_args(src, store), log);
  ASSERT_TRUE(wait_until([&] { return !slot_active_pid(src.db(), slot).empty(); }, 30))
      << "pgseed is not streaming; its log:\n" << read_text(log);
  run_workload(src.conninfo(), 0, 100, 51u);

  restart_server();  // scripts/pg.sh restart: pg_ctl stop -m fast, then start
  PQreset(src.db().get());
  ASSERT_EQ(PQstatus(src.db().get()), CONNECTION_OK);
  src.db().exec("SET TimeZone = UTC; SET DateStyle = ISO; SET IntervalStyle = postgres;"
                "SET extra_float_digits = 3; SET bytea_output = hex");
  ASSERT_EQ(waitpid(pid, nullptr, WNOHANG), 0)
      << "pgseed --follow exited on the restart; its log:\n" << read_text(log);

  // Made after the restart: they must reach the store while pgseed still runs.
  run_workload(src.conninfo(), 100, 200, 52u);
  src.db().exec("INSERT INTO acct VALUES (900100, 7, 'after restart')");
  std::string lsn = src.db().value("SELECT pg_current_wal_lsn()::text");
  EXPECT_TRUE(wait_confirmed(src.db(), slot, lsn, 120))
      << "pgseed --follow did not resume after the restart; its log:\n" << read_text(log);
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0)
      << "pgseed --follow exited after the restart; its log:\n" << read_text(log);
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_pid(pid), 0) << read_text(log);
  std::string text = read_text(log);
  EXPECT_NE(text.find("retrying"), std::string::npos) << text;
  EXPECT_EQ(text.find("unknown error"), std::string::npos) << text;

  // Without another sync: the follower alone brought the store to the source.
  expect_workload_equal(src, store);
  expect_exact_events(src, store);
}

// The walsender is terminated while `--follow` runs: it reconnects and keeps applying.
TEST_P(FaultTest, WalsenderTerminatedWhileFollowing) {
  TestDatabase src;
  src.db().exec(kWorkloadSchema);
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  std::string slot = store_status(store).slot;
  std::string log = temp_log_path();
  int pid = spawn_pgseed(follow_args(src, store), log);

  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(wait_until([&] { return !slot_active_pid(src.db(), slot).empty(); }, 30))
        << "pgseed is not streaming; its log:\n" << read_text(log);
    run_workload(src.conninfo(), round * 100, round * 100 + 60, 21u + unsigned(round));
    src.db().exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                  "WHERE slot_name = " + quote_literal(slot));
    if (round == 1) {
      // As after a network failure, when the server has not yet noticed that the old
      // connection is gone: the slot stays in use for a while, and reconnecting meets
      // "slot is active". pgseed keeps retrying.
      ASSERT_TRUE(wait_until([&] { return slot_active_pid(src.db(), slot).empty(); }, 10));
      PGconn* holder = hold_slot(src, slot);
      std::this_thread::sleep_for(std::chrono::milliseconds(2500));
      PQfinish(holder);
    }
    // Made after the termination: they must reach the store while pgseed still runs.
    run_workload(src.conninfo(), round * 100 + 60, round * 100 + 100, 31u + unsigned(round));
    src.db().exec("INSERT INTO acct VALUES (" + std::to_string(900000 + round) + ", 7, 'marker')");
    std::string lsn = src.db().value("SELECT pg_current_wal_lsn()::text");
    EXPECT_TRUE(wait_confirmed(src.db(), slot, lsn, 30))
        << "pgseed did not resume after pg_terminate_backend; its log:\n" << read_text(log);
    if (store_kind() == "sqlite") {  // readable while pgseed writes it (WAL mode)
      RunResult r = run_pgseed({"dump", "--store", store, "--table", "public.acct", "--format", "csv"});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_NE(r.out.find(std::to_string(900000 + round) + ",7,marker"), std::string::npos);
    }
  }
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0) << "pgseed --follow exited after a dropped connection";
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_pid(pid), 0) << read_text(log);
  expect_workload_equal(src, store);
  expect_exact_events(src, store);
}

// One-shot mode: a dropped connection ends the run, non-zero, with one clear line.
TEST_P(FaultTest, OneShotDroppedConnectionFailsClearly) {
  TestDatabase src;
  src.db().exec(kWorkloadSchema);
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  std::string slot = store_status(store).slot;
  // Enough to keep the one-shot run busy for a while.
  src.db().exec("INSERT INTO acct SELECT i, i, 'bulk' FROM generate_series(1000000, 1100000) i;");
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--quiet", "--source", src.conninfo(), "--store", store}, log);
  std::string walsender;
  ASSERT_TRUE(wait_until([&] { return !(walsender = slot_active_pid(src.db(), slot)).empty(); }, 30, 5));
  src.db().exec("SELECT pg_terminate_backend(" + walsender + ")");
  int code = wait_pid(pid);
  std::string out = read_text(log);
  EXPECT_NE(code, 0) << out;
  EXPECT_LT(code, 128) << "pgseed died of a signal: " << out;
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "want one line, got:\n" << out;
  EXPECT_EQ(out.rfind("pgseed: error: ", 0), 0u) << out;
  EXPECT_NE(out.find("connection"), std::string::npos) << out;
  EXPECT_EQ(code, 3) << "a lost connection is exit code 3 (connection): " << out;

  sync_ok(src, store);
  expect_workload_equal(src, store);
}

// SIGTERM and SIGINT while following: exit 0, and what was applied is confirmed.
TEST_P(FaultTest, SignalsWhileFollowingConfirmApplied) {
  TestDatabase src;
  src.db().exec(kWorkloadSchema);
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  std::string slot = store_status(store).slot;
  int n = 0;
  for (int sig : {SIGTERM, SIGINT}) {
    std::string log = temp_log_path();
    int pid = spawn_pgseed(follow_args(src, store), log);
    ASSERT_TRUE(wait_until([&] { return !slot_active_pid(src.db(), slot).empty(); }, 30));
    run_workload(src.conninfo(), n, n + 100, 41u + unsigned(n));
    n += 100;
    // A large transaction in hand when the signal comes.
    src.db().exec("UPDATE acct SET bal = bal + 1;");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    kill(pid, sig);
    EXPECT_EQ(wait_pid(pid), 0) << read_text(log);
    StoreStatus st = store_status(store);
    EXPECT_EQ(slot_confirmed(src.db(), slot), st.applied_lsn) << "after signal " << sig;
    EXPECT_TRUE(slot_active_pid(src.db(), slot).empty());
  }
  sync_ok(src, store);
  expect_workload_equal(src, store);
  expect_exact_events(src, store);
}

// One-shot mode: a server crash ends the run, non-zero, with one clear line; the next run
// catches up. (What is tested here does not depend on the store: SQLite.)
TEST(OneShotServerCrash, FailsWithOneLineThenCatchesUp) {
  TestDatabase src;
  src.db().exec(kWorkloadSchema);
  std::string store = temp_store("sqlite");
  sync_ok(src, store);
  std::string slot = store_status(store).slot;
  src.db().exec("INSERT INTO acct SELECT i, i, 'bulk' FROM generate_series(1000000, 1100000) i;");
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--quiet", "--source", src.conninfo(), "--store", store}, log);
  ASSERT_TRUE(wait_until([&] { return !slot_active_pid(src.db(), slot).empty(); }, 30, 5));
  crash_server();
  int code = wait_pid(pid);
  restart_server();
  PQreset(src.db().get());
  std::string out = read_text(log);
  EXPECT_NE(code, 0) << out;
  EXPECT_EQ(code, 3) << "a lost connection is exit code 3 (connection): " << out;
  EXPECT_LT(code, 128) << "pgseed died of a signal: " << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "want one line, got:\n" << out;
  EXPECT_EQ(out.rfind("pgseed: error: ", 0), 0u) << out;
  sync_ok(src, store);
  expect_workload_equal(src, store);
}

// `--follow` retries only what is transient: the slot dropped under it (42704 when it
// reconnects) needs someone to act, so it stops with one clear line instead of retrying
// forever. (Independent of the store: SQLite.)
TEST(FollowPermanentError, SlotDroppedStopsTheFollower) {
  TestDatabase src;
  src.db().exec(kWorkloadSchema);
  std::string store = temp_store("sqlite");
  sync_ok(src, store);
  std::string slot = store_status(store).slot;
  std::string log = temp_log_path();
  int pid = spawn_pgseed(follow_args(src, store), log);
  ASSERT_TRUE(wait_until([&] { return !slot_active_pid(src.db(), slot).empty(); }, 30))
      << "pgseed is not streaming; its log:\n" << read_text(log);
  // Take the slot away: end its walsender, drop it before pgseed is back (else again).
  bool dropped = wait_until(
      [&] {
        src.db().try_exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                          "WHERE slot_name = " + quote_literal(slot) + " AND active");
        return src.db().try_exec("SELECT pg_drop_replication_slot(" + quote_literal(slot) + ")").empty();
      },
      60, 20);
  ASSERT_TRUE(dropped) << read_text(log);
  int status = 0;
  bool exited = wait_until([&] { return waitpid(pid, &status, WNOHANG) == pid; }, 120);
  if (!exited) {
    kill(pid, SIGKILL);
    wait_pid(pid);
  }
  ASSERT_TRUE(exited) << "pgseed --follow kept retrying without its slot; its log:\n" << read_text(log);
  ASSERT_TRUE(WIFEXITED(status)) << read_text(log);
  EXPECT_EQ(WEXITSTATUS(status), 6) << "a missing slot is exit code 6 (source state): " << read_text(log);
  std::string text = read_text(log);
  EXPECT_NE(text.find("pgseed: error: replication slot " + slot + " no longer exists"), std::string::npos)
      << text;
}

INSTANTIATE_TEST_SUITE_P(Stores, FaultTest, ::testing::ValuesIn(test_support::kStoreKinds));

}  // namespace pgseed::test
