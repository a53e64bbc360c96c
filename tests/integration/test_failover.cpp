// Failover slots (PostgreSQL 17+): sync --failover creates the slot with FAILOVER and
// switches an existing store's slot; status says so (text and json). And the promotion
// ride-through: `sync --follow` with a two-host conninfo (target_session_attrs=read-write)
// follows a promoted standby by itself, or stops with one clear line when the slot did not
// survive or the store holds changes the new primary never received.
//
// The ride-through tests start a primary and a standby of their own (scripts/pg.sh standby
// --sync-slots), as a promotion ends the pair. They wait on events (the standby's copy of
// the slot, log lines, the new primary's slot confirming an LSN), never on the clock; the
// time limits are generous guards.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "harness.h"
#include "stream_support.h"
#include "store_kinds.h"

namespace pgseed::test {

TEST(FailoverSlot, CreatedAndSwitchedAndReported) {
  Db server(server_conninfo());
  int major = std::atoi(server.value("SHOW server_version_num").c_str()) / 10000;
  TestDatabase src;
  src.db().exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)");
  if (major < 17) {
    RunResult r = run_pgseed({"sync", "--source", src.conninfo(), "--store", temp_store("sqlite"),
                              "--tables", "t", "--failover"});
    EXPECT_EQ(r.exit_code, 6) << r.err;  // source state: the server is too old
    EXPECT_NE(r.err.find("PostgreSQL 17"), std::string::npos) << r.err;
    GTEST_SKIP() << "failover slots need PostgreSQL 17 or later; this run is on " << major;
  }
  auto failover_of = [&](const std::string& slot) {
    return src.db().value("SELECT failover::text FROM pg_replication_slots WHERE slot_name = '" + slot + "'");
  };
  std::string a = temp_store("sqlite");
  std::string slot_a = "fo_a_" + src.name();
  RunResult r = run_pgseed({"sync", "--source", src.conninfo(), "--store", a, "--tables", "t",
                            "--slot", slot_a, "--failover"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(failover_of(slot_a), "true");

  // A store made without it: a later --failover switches its slot.
  std::string b = temp_store("rocksdb");
  std::string slot_b = "fo_b_" + src.name();
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", b, "--publication", slot_a,
                  "--slot", slot_b});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(failover_of(slot_b), "false");
  r = run_pgseed({"status", "--source", src.conninfo(), "--store", b});
  EXPECT_NE(r.out.find("failover slot:    no"), std::string::npos) << r.out;
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", b, "--failover"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("is a failover slot now"), std::string::npos) << r.err;
  EXPECT_EQ(failover_of(slot_b), "true");

  r = run_pgseed({"status", "--source", src.conninfo(), "--store", b});
  EXPECT_NE(r.out.find("failover slot:    yes"), std::string::npos) << r.out;
  // The test server names no standby in synchronized_standby_slots: warned.
  EXPECT_NE(r.out.find("failover_unguarded"), std::string::npos) << r.out;
  r = run_pgseed({"status", "--source", src.conninfo(), "--store", b, "--format", "json"});
  EXPECT_EQ(json_field(r.out, "failover"), "true") << r.out;
  EXPECT_EQ(json_field(r.out, "standby"), "false") << r.out;
  EXPECT_EQ(json_field(r.out, "synced"), "false") << r.out;
}

namespace {



size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A primary (DIR/p) and a standby of it with slot synchronisation (DIR/s, scripts/pg.sh
// standby --sync-slots) of the run's major version, and a database of the test's own on
// the primary; both servers stopped and removed at the end.
class FailoverPair {
 public:
  explicit FailoverPair(int major) {
    const char* scripts = std::getenv("PGSEED_SCRIPTS_DIR");
    if (!scripts) {
      ADD_FAILURE() << "PGSEED_SCRIPTS_DIR is not set (run through scripts/test.sh)";
      return;
    }
    static std::atomic<int> n{0};
    pg_ = std::string(scripts) + "/pg.sh";
    dir_ = "/tmp/pgseed-fo-" + std::to_string(getpid()) + "-" + std::to_string(n++);
    std::string env = "PGSEED_PG_VERSION=" + std::to_string(major) + " ";
    std::string cmd = "mkdir -p " + dir_ + " && chmod 0755 " + dir_ + " && " + env + pg_ +
                      " start " + dir_ + "/p >/dev/null && " + env + pg_ +
                      " standby --sync-slots " + dir_ + "/p " + dir_ + "/s >/dev/null";
    if (std::system(cmd.c_str()) != 0) {
      ADD_FAILURE() << "could not start a primary and a standby in " << dir_;
      return;
    }
    primary_port_ = first_line_of(dir_ + "/p/port");
    standby_port_ = first_line_of(dir_ + "/s/port");
    db_ = "fo_" + std::to_string(getpid()) + "_" + std::to_string(n);
    Db(server("p", "postgres")).exec("CREATE DATABASE " + db_);
    started_ = true;
  }
  ~FailoverPair() {
    if (dir_.empty()) return;
    std::system((pg_ + " stop " + dir_ + "/s >/dev/null 2>&1").c_str());
    std::system((pg_ + " stop " + dir_ + "/p >/dev/null 2>&1").c_str());
    std::system(("rm -rf " + dir_).c_str());
  }
  bool started() const { return started_; }

  // The test database on one server ("p" or "s").
  std::string server(const std::string& which, const std::string& db = "") const {
    return "host=127.0.0.1 port=" + (which == "p" ? primary_port_ : standby_port_) +
           " user=postgres dbname=" + (db.empty() ? db_ : db);
  }
  std::string primary() const { return server("p"); }
  std::string standby() const { return server("s"); }
  // What an application gives pgseed: both hosts, the one that takes writes.
  std::string both() const { return both_any() + " target_session_attrs=read-write"; }
  // Both hosts, whichever answers first.
  std::string both_any() const {
    return "host=127.0.0.1,127.0.0.1 port=" + primary_port_ + "," + standby_port_ +
           " user=postgres dbname=" + db_ + " connect_timeout=5";
  }
  // scripts/pg.sh COMMAND DIR/WHICH, with environment assignments `env` ("KEEP=1").
  bool pg(const std::string& command, const std::string& which, const std::string& env = "") const {
    return std::system((env + " " + pg_ + " " + command + " " + dir_ + "/" + which + " >/dev/null").c_str()) == 0;
  }

  // Waits until the standby's copy of `slot` is synced and persistent (a slot still
  // temporary at the promotion is dropped by it); asks the primary for the running-xacts
  // record the copy needs to become persistent.
  bool wait_slot_synced(const std::string& slot) {
    Db p(primary()), s(standby());
    return wait_until([&] {
      p.exec("SELECT pg_log_standby_snapshot()");
      return s.value("SELECT synced AND NOT temporary FROM pg_replication_slots WHERE slot_name = " +
                     quote_literal(slot)) == "t";
    }, 120, 200);
  }

 private:
  std::string pg_, dir_, db_, primary_port_, standby_port_;
  bool started_ = false;
};

// Runs the workload (stream_support.h) on `conninfo` until `stop`: a transaction that fails
// (the primary went down) is followed by a reconnect (libpq picks the host that takes
// writes now); whether the failed one committed is for the comparison with the new primary
// to show, not for the writer to know.
class Writer {
 public:
  explicit Writer(std::string conninfo) : conninfo_(std::move(conninfo)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Writer() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int written() const { return written_; }

 private:
  void run() {
    std::mt19937 rng(17);
    PGconn* c = nullptr;
    for (int i = 0; !stop_; ++i) {
      if (!c || PQstatus(c) != CONNECTION_OK) {
        if (c) PQfinish(c);
        c = PQconnectdb(conninfo_.c_str());
        if (PQstatus(c) != CONNECTION_OK) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));  // retry pace, not a wait
          continue;
        }
        PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);  // the crash's WARNING
      }
      PGresult* r = PQexec(c, workload_txn(i, rng).c_str());
      if (PQresultStatus(r) == PGRES_COMMAND_OK) ++written_;
      PQclear(r);
    }
    if (c) PQfinish(c);
  }
  std::string conninfo_;
  std::atomic<bool> stop_{false};
  std::atomic<int> written_{0};
  std::thread thread_;
};

// `pgseed dump --table T` against the server's COPY of T.
void expect_equal_to(Db& server, const std::string& store, const std::string& table) {
  RunResult r = run_pgseed({"dump", "--store", store, "--table", table, "--format", "csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> got = sorted_csv_records(r.out);
  std::vector<std::string> want = server.csv_records("SELECT * FROM " + table);
  EXPECT_EQ(got.size(), want.size()) << table;
  EXPECT_TRUE(got == want) << table << " differs from the server's";
}

int server_major() {
  Db db(server_conninfo());
  return std::atoi(db.value("SHOW server_version_num").c_str()) / 10000;
}

class FailoverPromotion : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    major_ = server_major();
    if (major_ < 17)
      GTEST_SKIP() << "failover slots need PostgreSQL 17 or later; this run is on " << major_;
  }
  int major_ = 0;
};

// The done-when test of the ride-through: a writer on the primary, pgseed following with
// both hosts in its conninfo; the primary crashes and the standby is promoted; the same
// pgseed process (not restarted) reconnects, says so once, and a row written on the new
// primary arrives; the store then equals the new primary (both tables, the key-less one
// without duplicates) and verify agrees.
TEST_P(FailoverPromotion, FollowRidesThroughAPromotionUnderAWriter) {
  FailoverPair pair(major_);
  ASSERT_TRUE(pair.started());
  {
    Db p(pair.primary());
    p.exec(kWorkloadSchema);
    p.exec("CREATE PUBLICATION pub FOR TABLE acct, events");
  }
  Writer writer(pair.both());
  std::string store = temp_store(GetParam());
  std::string slot = "fo_ride_" + GetParam();
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--source", pair.both(), "--store", store, "--publication", "pub",
                          "--slot", slot, "--failover", "--follow"}, log);
  ASSERT_TRUE(wait_until([&] { return read_text(log).find("streaming from") != std::string::npos; }, 60))
      << read_text(log);
  int at_start = writer.written();
  ASSERT_TRUE(wait_until([&] { return writer.written() >= at_start + 100; }, 60));
  ASSERT_TRUE(pair.wait_slot_synced(slot)) << "the standby's copy of " << slot << " is not synced";

  // The failover: the primary goes down at once (no shutdown checkpoint, no goodbye to
  // the walsenders' clients), the standby takes over.
  auto failed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(pair.pg("crash", "p"));
  ASSERT_TRUE(pair.pg("promote", "s"));
  double promoted_after = seconds_since(failed_at);

  ASSERT_TRUE(wait_until([&] { return read_text(log).find("is on timeline") != std::string::npos; }, 120))
      << read_text(log);
  double reconnected_after = seconds_since(failed_at);

  // A row written on the new primary arrives: its slot confirms an LSN after it only once
  // the store holds it durably.
  Db np(pair.standby());
  auto marked_at = std::chrono::steady_clock::now();
  np.exec("INSERT INTO acct VALUES (-1, 42, 'after the promotion')");
  std::string marker = np.value("SELECT pg_current_wal_lsn()");
  ASSERT_TRUE(wait_confirmed(np, slot, marker, 60)) << read_text(log);
  double marker_after = seconds_since(marked_at);
  std::printf("[ failover ] %s: promoted %.1f s after the crash; pgseed on the new timeline "
              "%.1f s after the crash; a row written then arrived in %.2f s\n",
              GetParam().c_str(), promoted_after, reconnected_after, marker_after);
  RecordProperty("ride_through_seconds", std::to_string(reconnected_after));
  EXPECT_LT(marker_after, 10) << read_text(log);  // "within seconds" (a generous guard)

  // The writer goes on against the new primary, and pgseed with it.
  int at_promotion = writer.written();
  ASSERT_TRUE(wait_until([&] { return writer.written() >= at_promotion + 100; }, 60));
  writer.stop();
  std::string end = np.value("SELECT pg_current_wal_lsn()");
  ASSERT_TRUE(wait_confirmed(np, slot, end, 60)) << read_text(log);
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_pid(pid), 0) << read_text(log);
  EXPECT_EQ(count_of(read_text(log), "is on timeline"), 1u) << read_text(log);

  expect_equal_to(np, store, "public.acct");
  expect_equal_to(np, store, "public.events");
  RunResult v = run_pgseed({"verify", "--source", pair.both(), "--store", store});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("all tables equal"), std::string::npos) << v.out;
}

// A promotion while no pgseed runs: the next sync finds the source on a new timeline, checks
// it against the timeline the store recorded, and follows (one-shot, the same line).
TEST_P(FailoverPromotion, SyncAfterAPromotionWhileStoppedFollows) {
  FailoverPair pair(major_);
  ASSERT_TRUE(pair.started());
  {
    Db p(pair.primary());
    p.exec(kWorkloadSchema);
    p.exec("CREATE PUBLICATION pub FOR TABLE acct, events");
  }
  std::string store = temp_store(GetParam());
  std::string slot = "fo_later_" + GetParam();
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--source", pair.both(), "--store", store, "--publication", "pub",
                          "--slot", slot, "--failover", "--follow"}, log);
  ASSERT_TRUE(wait_until([&] { return read_text(log).find("streaming from") != std::string::npos; }, 60))
      << read_text(log);
  {
    Db p(pair.primary());
    std::mt19937 rng(5);
    for (int i = 0; i < 60; ++i) p.exec(workload_txn(i, rng));
    ASSERT_TRUE(wait_confirmed(p, slot, p.value("SELECT pg_current_wal_lsn()"))) << read_text(log);
  }
  ASSERT_TRUE(pair.wait_slot_synced(slot));
  kill(pid, SIGTERM);
  ASSERT_EQ(wait_pid(pid), 0) << read_text(log);

  ASSERT_TRUE(pair.pg("crash", "p"));
  ASSERT_TRUE(pair.pg("promote", "s"));
  Db np(pair.standby());
  std::mt19937 rng(6);
  for (int i = 60; i < 120; ++i) np.exec(workload_txn(i, rng));  // keys of their own
  RunResult r = run_pgseed({"sync", "--source", pair.both(), "--store", store});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_of(r.err, "is on timeline 2 now (was 1"), 1u) << r.err;
  expect_equal_to(np, store, "public.acct");
  expect_equal_to(np, store, "public.events");
  // The store recorded timeline 2 with its position: the next sync has nothing to say.
  r = run_pgseed({"sync", "--source", pair.both(), "--store", store});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("is on timeline"), std::string::npos) << r.err;
  // status shows it (text and JSON).
  r = run_pgseed({"status", "--store", store});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("timeline:         2\n"), std::string::npos) << r.out;
  r = run_pgseed({"status", "--store", store, "--format", "json"});
  EXPECT_NE(r.out.find("\"timeline\":2,"), std::string::npos) << r.out;
}

// A slot made without --failover is not copied to the standby: after the promotion the
// follower says so in one line, with what to do, and exits non-zero (not a silent wait).
TEST_P(FailoverPromotion, SlotThatDidNotSurviveIsSaid) {
  FailoverPair pair(major_);
  ASSERT_TRUE(pair.started());
  {
    Db p(pair.primary());
    p.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);"
           "CREATE PUBLICATION pub FOR TABLE t");
  }
  std::string store = temp_store(GetParam());
  std::string slot = "fo_lost_" + GetParam();
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--source", pair.both(), "--store", store, "--publication", "pub",
                          "--slot", slot, "--follow"}, log);
  ASSERT_TRUE(wait_until([&] { return read_text(log).find("streaming from") != std::string::npos; }, 60))
      << read_text(log);
  {
    Db p(pair.primary());
    p.exec("INSERT INTO t VALUES (2)");
    ASSERT_TRUE(wait_confirmed(p, slot, p.value("SELECT pg_current_wal_lsn()")));
  }
  ASSERT_TRUE(pair.pg("crash", "p"));
  ASSERT_TRUE(pair.pg("promote", "s"));
  int code = -1;
  ASSERT_TRUE(wait_until([&] {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) != pid) return false;
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }, 120, 100)) << read_text(log);
  std::string out = read_text(log);
  EXPECT_EQ(code, 6) << out;  // source state
  EXPECT_EQ(count_of(out, "is on timeline"), 1u) << out;
  EXPECT_NE(out.find("does not exist on the new primary"), std::string::npos) << out;
  EXPECT_NE(out.find("--reseed"), std::string::npos) << out;

  // What the line says to do brings the store in line with the new primary.
  Db np(pair.standby());
  np.exec("INSERT INTO t VALUES (3)");
  RunResult r = run_pgseed({"sync", "--source", pair.both(), "--store", store, "--reseed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_equal_to(np, store, "public.t");
  RunResult v = run_pgseed({"verify", "--source", pair.both(), "--store", store});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

// Without synchronized_standby_slots the follower can get ahead of the standby: changes it
// stored while the standby was down are not on the promoted standby's timeline. The
// follower stops with one line saying so instead of continuing (it would skip the new
// primary's transactions below its stored LSN).
TEST_P(FailoverPromotion, StoreAheadOfTheNewPrimaryStops) {
  FailoverPair pair(major_);
  ASSERT_TRUE(pair.started());
  {
    Db p(pair.primary());
    p.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);"
           "CREATE PUBLICATION pub FOR TABLE t");
  }
  std::string store = temp_store(GetParam());
  std::string slot = "fo_ahead_" + GetParam();
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--source", pair.both(), "--store", store, "--publication", "pub",
                          "--slot", slot, "--failover", "--follow"}, log);
  ASSERT_TRUE(wait_until([&] { return read_text(log).find("streaming from") != std::string::npos; }, 60))
      << read_text(log);
  ASSERT_TRUE(pair.wait_slot_synced(slot));
  {
    // The standby stops receiving; the primary no longer waits for it.
    Db p(pair.primary());
    p.exec("ALTER SYSTEM RESET synchronized_standby_slots");
    p.exec("SELECT pg_reload_conf()");
    ASSERT_TRUE(wait_until([&] { return p.value("SHOW synchronized_standby_slots").empty(); }, 30));
  }
  ASSERT_TRUE(pair.pg("stop", "s", "KEEP=1"));
  {
    Db p(pair.primary());
    p.exec("INSERT INTO t VALUES (2)");
    ASSERT_TRUE(wait_confirmed(p, slot, p.value("SELECT pg_current_wal_lsn()"))) << read_text(log);
  }
  ASSERT_TRUE(pair.pg("crash", "p"));
  ASSERT_TRUE(pair.pg("start", "s"));
  ASSERT_TRUE(pair.pg("promote", "s"));
  int code = -1;
  ASSERT_TRUE(wait_until([&] {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) != pid) return false;
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }, 120, 100)) << read_text(log);
  std::string out = read_text(log);
  EXPECT_EQ(code, 6) << out;
  EXPECT_NE(out.find("never received"), std::string::npos) << out;
  EXPECT_EQ(out.find("is on timeline"), std::string::npos) << out;  // not followed
  Db np(pair.standby());
  EXPECT_EQ(np.value("SELECT count(*) FROM t"), "1");  // row 2 is in the store only

  // A restart (pgseed@.service restarts on exit 6) is refused the same way: the store
  // records the timeline its position is on.
  np.exec("INSERT INTO t VALUES (3)");
  RunResult r = run_pgseed({"sync", "--source", pair.both(), "--store", store});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("never received"), std::string::npos) << r.err;
  EXPECT_EQ(count_of(r.err, "\n"), 1u) << r.err;

  // What the line says to do brings the store in line with the new primary (row 2 gone).
  r = run_pgseed({"sync", "--source", pair.both(), "--store", store, "--reseed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_equal_to(np, store, "public.t");
  RunResult v = run_pgseed({"verify", "--source", pair.both(), "--store", store});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

// Without target_session_attrs=read-write a reconnect reaches the standby while the primary
// is down, where the slot's synchronized copy cannot be streamed from yet: pgseed says so
// (warned at the start too) and waits for the promotion instead of giving up.
TEST_P(FailoverPromotion, StandbyReachedBeforeThePromotionIsWaitedFor) {
  FailoverPair pair(major_);
  ASSERT_TRUE(pair.started());
  {
    Db p(pair.primary());
    p.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);"
           "CREATE PUBLICATION pub FOR TABLE t");
  }
  std::string store = temp_store(GetParam());
  std::string slot = "fo_any_" + GetParam();
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--source", pair.both_any(), "--store", store, "--publication",
                          "pub", "--slot", slot, "--failover", "--follow"}, log);
  ASSERT_TRUE(wait_until([&] { return read_text(log).find("streaming from") != std::string::npos; }, 60))
      << read_text(log);
  EXPECT_NE(read_text(log).find("without target_session_attrs=read-write"), std::string::npos) << read_text(log);
  {
    Db p(pair.primary());
    p.exec("INSERT INTO t VALUES (2)");
    ASSERT_TRUE(wait_confirmed(p, slot, p.value("SELECT pg_current_wal_lsn()"))) << read_text(log);
  }
  ASSERT_TRUE(pair.wait_slot_synced(slot));
  ASSERT_TRUE(pair.pg("crash", "p"));
  ASSERT_TRUE(wait_until([&] { return read_text(log).find("usable once the standby is promoted") != std::string::npos; }, 60))
      << read_text(log);
  ASSERT_TRUE(pair.pg("promote", "s"));
  ASSERT_TRUE(wait_until([&] { return read_text(log).find("is on timeline") != std::string::npos; }, 120))
      << read_text(log);
  Db np(pair.standby());
  np.exec("INSERT INTO t VALUES (3)");
  ASSERT_TRUE(wait_confirmed(np, slot, np.value("SELECT pg_current_wal_lsn()"), 60)) << read_text(log);
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_pid(pid), 0) << read_text(log);
  expect_equal_to(np, store, "public.t");
}

INSTANTIATE_TEST_SUITE_P(Failover, FailoverPromotion, ::testing::ValuesIn(test_support::kStoreKinds));

}  // namespace
}  // namespace pgseed::test
