// A hot standby (PostgreSQL 16+) as the source: first sync and --follow while the primary
// is written, verify and status against the standby, --primary, a stop while the slot
// creation waits for the primary, and a publication that would have to be made on the
// standby.
//
// The tests share one primary + standby (tests/scripts/standby_pair.sh, a ctest fixture:
// PGSEED_STANDBY_DIR); run without it, a test starts a pair of its own. Each test makes a
// database of its own on the primary. They wait on events (the standby's replay position,
// a slot's confirmed position, a log line), never on the clock; the time limits are
// generous guards.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "store_kinds.h"
#include "harness.h"
#include "stream_support.h"

namespace pgseed::test {
namespace {



// The major version of the server the run is for (scripts/test.sh's).
int server_major() {
  Db db(server_conninfo());
  return std::atoi(db.value("SHOW server_version_num").c_str()) / 10000;
}

// The primary and standby the tests use: the fixture's (PGSEED_STANDBY_DIR), or, without
// one, a pair of this process's own, stopped when the process exits.
struct Pair {
  std::string primary, standby;  // conninfo (dbname=postgres)
  std::string dir;               // DIR/p and DIR/s: scripts/pg.sh's directories
};

class OwnPair {
 public:
  explicit OwnPair(int major) {
    const char* scripts = std::getenv("PGSEED_SCRIPTS_DIR");
    if (!scripts) return;
    script_ = std::string(scripts) + "/../tests/scripts/standby_pair.sh";
    dir_ = "/tmp/pgseed-sbown-" + std::to_string(getpid());
    std::string cmd = "PGSEED_PG_VERSION=" + std::to_string(major) + " " + script_ + " start " +
                      dir_ + " >/dev/null 2>&1";
    started_ = std::system(cmd.c_str()) == 0;
  }
  ~OwnPair() {
    if (!dir_.empty()) std::system((script_ + " stop " + dir_ + " >/dev/null 2>&1").c_str());
  }
  const std::string& dir() const { return dir_; }
  bool started() const { return started_; }

 private:
  std::string script_, dir_;
  bool started_ = false;
};

std::optional<Pair> pair_in(const std::string& dir) {
  Pair p{first_line_of(dir + "/p/conninfo"), first_line_of(dir + "/s/conninfo"), dir};
  if (p.primary.empty() || p.standby.empty()) return std::nullopt;
  return p;
}

Pair the_pair(int major) {
  if (const char* dir = std::getenv("PGSEED_STANDBY_DIR"))
    if (auto p = pair_in(dir)) return *p;
  static OwnPair own(major);
  if (!own.started()) ADD_FAILURE() << "could not start a primary and a standby (PGSEED_SCRIPTS_DIR set?)";
  if (auto p = pair_in(own.dir())) return *p;
  return {};
}

// A database of the test's own on the pair's primary, replayed by the standby; dropped at
// the end with the slots made in it on the standby.
class StandbyDatabase {
 public:
  explicit StandbyDatabase(const Pair& pair) : pair_(pair) {
    static std::atomic<int> n{0};
    name_ = "sb_" + std::to_string(getpid()) + "_" + std::to_string(n++);
    Db(pair_.primary).exec("CREATE DATABASE " + name_);
    primary_ = std::make_unique<Db>(primary_conninfo());
  }
  ~StandbyDatabase() {
    primary_.reset();
    Db standby(pair_.standby);
    standby.try_exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE "
                     "database = '" + name_ + "' AND active_pid IS NOT NULL");
    wait_until([&] {
      return standby.try_exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                              "WHERE database = '" + name_ + "'").empty();
    }, 30, 100);
    Db(pair_.primary).try_exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  const std::string& name() const { return name_; }
  std::string primary_conninfo() const { return pair_.primary + " dbname=" + name_; }
  std::string standby_conninfo() const { return pair_.standby + " dbname=" + name_; }
  Db& primary() { return *primary_; }

  // Waits until the standby has replayed everything the primary has written so far.
  void wait_replayed() {
    std::string lsn = primary_->value("SELECT pg_current_wal_lsn()");
    Db standby(pair_.standby);
    ASSERT_TRUE(wait_until([&] {
      return standby.value("SELECT pg_last_wal_replay_lsn() >= '" + lsn + "'::pg_lsn") == "t";
    }, 30, 20)) << "the standby did not replay " << lsn;
  }

  // Slots of this database on the standby.
  int standby_slots() {
    return std::atoi(Db(pair_.standby).value("SELECT count(*) FROM pg_replication_slots WHERE "
                                             "database = '" + name_ + "'").c_str());
  }

 private:
  Pair pair_;
  std::string name_;
  std::unique_ptr<Db> primary_;
};

// `pgseed dump --table T` against the primary's COPY of T.
void expect_equal_to_primary(Db& primary, const std::string& store, const std::string& table) {
  RunResult r = run_pgseed({"dump", "--store", store, "--table", table, "--format", "csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_records_equal(sorted_csv_records(r.out), primary.csv_records("SELECT * FROM " + table), table);
}

std::string store_file(const std::string& store) { return store.substr(store.find(':') + 1); }

class StandbySource : public ::testing::Test {
 protected:
  void SetUp() override {
    major_ = server_major();
    if (major_ < 16)
      GTEST_SKIP() << "a hot standby as source needs PostgreSQL 16 or later (logical decoding "
                      "on a standby); this run is on " << major_;
    pair_ = the_pair(major_);
    ASSERT_FALSE(pair_.primary.empty());
  }
  int major_ = 0;
  Pair pair_;
};

class StandbyStoreTest : public StandbySource, public ::testing::WithParamInterface<std::string> {};

// First sync and --follow from the standby while the primary is written (a keyed and a
// key-less table), then verify and status against the standby: the store ends equal to
// the primary.
TEST_P(StandbyStoreTest, FirstSyncAndFollowWhilePrimaryIsWritten) {
  StandbyDatabase db(pair_);
  db.primary().exec(kWorkloadSchema);
  db.primary().exec("CREATE PUBLICATION pub FOR TABLE acct, events");
  db.wait_replayed();

  std::atomic<bool> writing{true};
  std::atomic<int> written{0};
  std::thread writer([&] {
    Db w(db.primary_conninfo());
    std::mt19937 rng(12);
    for (int i = 0; writing; ++i) {
      w.exec(workload_txn(i, rng));
      ++written;
    }
  });

  std::string store = temp_store(GetParam());
  std::string slot = "follow_" + db.name();  // slot names are the cluster's, not the database's
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--source", db.standby_conninfo(), "--store", store,
                          "--publication", "pub", "--slot", slot, "--follow",
                          "--primary", db.primary_conninfo()}, log);
  bool streaming = wait_until([&] { return read_text(log).find("streaming from") != std::string::npos; }, 30);
  // Changes made while it follows, not only before.
  int at_start = written;
  bool wrote = wait_until([&] { return written >= at_start + 150; }, 30);
  writing = false;
  writer.join();
  ASSERT_TRUE(streaming && wrote) << read_text(log);

  std::string end = db.primary().value("SELECT pg_current_wal_lsn()");
  db.wait_replayed();
  Db standby(db.standby_conninfo());
  EXPECT_TRUE(wait_confirmed(standby, slot, end)) << read_text(log);
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_pid(pid), 0) << read_text(log);
  EXPECT_EQ(read_text(log).find("waiting for the primary"), std::string::npos) << read_text(log);

  expect_equal_to_primary(db.primary(), store, "public.acct");
  expect_equal_to_primary(db.primary(), store, "public.events");
  if (HasFailure()) ADD_FAILURE() << "the follower's log:\n" << read_text(log);

  RunResult v = run_pgseed({"verify", "--source", db.standby_conninfo(), "--store", store,
                            "--primary", db.primary_conninfo()});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("all tables equal"), std::string::npos) << v.out;

  RunResult s = run_pgseed({"status", "--source", db.standby_conninfo(), "--store", store,
                            "--format", "json"});
  EXPECT_EQ(s.exit_code, 0) << s.out << s.err;
  EXPECT_EQ(json_field(s.out, "error"), "null") << s.out;
  EXPECT_EQ(json_field(s.out, "healthy"), "true") << s.out;
  EXPECT_EQ(json_field(s.out, "slot_exists"), "true") << s.out;
}

// With --primary, pgseed asks the primary for the running-xacts record itself: a first
// sync from the standby of an idle primary does not wait for the primary to log one.
TEST_P(StandbyStoreTest, PrimaryOptionMakesFirstSyncNotWait) {
  StandbyDatabase db(pair_);
  db.primary().exec("CREATE TABLE t (id int PRIMARY KEY, v text);"
                    "INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 500) i;"
                    "CREATE PUBLICATION pub FOR TABLE t");
  db.wait_replayed();
  std::string store = temp_store(GetParam());
  auto start = std::chrono::steady_clock::now();
  RunResult r = run_pgseed({"sync", "--source", db.standby_conninfo(), "--store", store,
                            "--publication", "pub", "--primary", db.primary_conninfo()});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("waiting for the primary"), std::string::npos) << r.err;
  EXPECT_LT(seconds, 10) << r.err;  // a generous guard; an idle primary may log nothing for minutes
  expect_equal_to_primary(db.primary(), store, "public.t");
  EXPECT_EQ(db.standby_slots(), 1);
}

// A first sync from the standby of an idle primary says that it waits for the primary;
// SIGTERM then ends it promptly, with nothing left: no slot on the standby, no store.
TEST_F(StandbySource, InterruptWhileWaitingForThePrimary) {
  StandbyDatabase db(pair_);
  db.primary().exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);"
                    "CREATE PUBLICATION pub FOR TABLE t");
  db.wait_replayed();
  std::string store = temp_store("sqlite");
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--source", db.standby_conninfo(), "--store", store,
                          "--publication", "pub"}, log);
  ASSERT_TRUE(wait_until([&] { return read_text(log).find("waiting for the primary") != std::string::npos; }, 30, 5))
      << read_text(log);
  EXPECT_NE(read_text(log).find("or pass --primary"), std::string::npos) << read_text(log);
  auto start = std::chrono::steady_clock::now();
  kill(pid, SIGTERM);
  int code = wait_pid(pid);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(code, 143) << read_text(log);
  EXPECT_LT(seconds, 10) << read_text(log);
  EXPECT_NE(read_text(log).find("nothing was kept"), std::string::npos) << read_text(log);
  EXPECT_EQ(db.standby_slots(), 0);
  EXPECT_FALSE(std::filesystem::exists(store_file(store)));
}

// Another standby of the pair's primary, of the test's own (made after the test's database,
// so that it has it), stopped at the end of the test. `extra_opts`: PG_EXTRA_OPTS.
class ExtraStandby {
 public:
  ExtraStandby(const Pair& pair, const std::string& name, const std::string& extra_opts = "") {
    const char* scripts = std::getenv("PGSEED_SCRIPTS_DIR");
    if (!scripts || pair.dir.empty()) return;
    pg_ = std::string(scripts) + "/pg.sh";
    dir_ = "/tmp/pgseed-" + name + "-" + std::to_string(getpid());
    std::string env = extra_opts.empty() ? "" : "PG_EXTRA_OPTS='" + extra_opts + "' ";
    if (std::system((env + pg_ + " standby " + pair.dir + "/p " + dir_ + " >/dev/null 2>&1").c_str()) == 0)
      conninfo_ = first_line_of(dir_ + "/conninfo");
  }
  ~ExtraStandby() {
    if (!dir_.empty()) std::system((pg_ + " stop " + dir_ + " >/dev/null 2>&1").c_str());
  }
  bool started() const { return !conninfo_.empty(); }
  const std::string& conninfo() const { return conninfo_; }  // dbname=postgres

 private:
  std::string pg_, dir_, conninfo_;
};

// Without hot_standby_feedback the primary knows nothing of what a standby's slot and its
// exported snapshot need: it may vacuum away rows the copy must still see. Such a standby
// is refused with one line (exit 5, configuration) saying what to set, nothing left behind.
TEST_F(StandbySource, StandbyWithoutFeedbackIsRefused) {
  StandbyDatabase db(pair_);
  db.primary().exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);"
                    "CREATE PUBLICATION pub FOR TABLE t");
  ExtraStandby nofb(pair_, "nofb", "-c hot_standby_feedback=off");
  ASSERT_TRUE(nofb.started());
  std::string conninfo = nofb.conninfo() + " dbname=" + db.name();

  std::string store = temp_store("sqlite");
  RunResult r = run_pgseed({"sync", "--source", conninfo, "--store", store, "--publication", "pub",
                            "--primary", db.primary_conninfo()});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("hot_standby_feedback = on"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(Db(conninfo).value("SELECT count(*) FROM pg_replication_slots"), "0");
  EXPECT_FALSE(std::filesystem::exists(store_file(store)));
}

// A standby whose feedback has not reached the primary yet (here: feedback turned off, which
// clears the xmin of its slot on the primary, then on again while its walreceiver is
// stopped): with --primary, pgseed waits for the feedback before it creates a slot and
// takes a snapshot; when the walreceiver reconnects and sends it, the first sync completes
// and the replica equals the primary.
TEST_F(StandbySource, CopyWaitsForTheStandbysFeedbackToReachThePrimary) {
  StandbyDatabase db(pair_);
  db.primary().exec("CREATE TABLE t (id int PRIMARY KEY, v text);"
                    "INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 1000) i;"
                    "CREATE PUBLICATION pub FOR TABLE t");
  ExtraStandby fb(pair_, "fb");
  ASSERT_TRUE(fb.started());
  const std::string& standby = fb.conninfo();
  Db sb(standby);
  std::string slot = sb.value("SHOW primary_slot_name");
  ASSERT_FALSE(slot.empty());
  Db primary(pair_.primary);
  auto xmin_held = [&] {
    return primary.value("SELECT (xmin IS NOT NULL)::text FROM pg_replication_slots WHERE slot_name = '" +
                         slot + "'") == "true";
  };
  ASSERT_TRUE(xmin_held());
  auto set = [&](const std::string& sql) {
    sb.exec(sql);
    sb.exec("SELECT pg_reload_conf()");
  };
  set("ALTER SYSTEM SET hot_standby_feedback = off");
  ASSERT_TRUE(wait_until([&] { return !xmin_held(); }, 60, 20));
  set("ALTER SYSTEM SET primary_conninfo = ''");
  ASSERT_TRUE(wait_until([&] { return Db(standby).value("SELECT count(*) FROM pg_stat_wal_receiver") == "0"; }, 60, 20));
  set("ALTER SYSTEM SET hot_standby_feedback = on");
  ASSERT_TRUE(wait_until([&] { return Db(standby).value("SHOW hot_standby_feedback") == "on"; }, 60, 20));
  ASSERT_FALSE(xmin_held());

  std::string store = temp_store("sqlite");
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--source", standby + " dbname=" + db.name(), "--store", store,
                          "--publication", "pub", "--primary", db.primary_conninfo()}, log);
  ASSERT_TRUE(wait_until([&] { return read_text(log).find("hot_standby_feedback (its slot " + slot) != std::string::npos; }, 60, 5))
      << read_text(log);
  EXPECT_EQ(Db(standby).value("SELECT count(*) FROM pg_replication_slots"), "0");
  // The walreceiver reconnects and sends its feedback at once.
  set("ALTER SYSTEM RESET primary_conninfo");
  EXPECT_EQ(wait_pid(pid), 0) << read_text(log);
  EXPECT_TRUE(xmin_held());
  expect_equal_to_primary(db.primary(), store, "public.t");
}

// A publication cannot be made on a standby: one clear line saying to create it on the
// primary (exit 5, configuration), and nothing left behind.
TEST_F(StandbySource, MissingPublicationIsRefused) {
  StandbyDatabase db(pair_);
  db.primary().exec("CREATE TABLE t (id int PRIMARY KEY)");
  db.wait_replayed();
  std::string store = temp_store("sqlite");
  RunResult r = run_pgseed({"sync", "--source", db.standby_conninfo(), "--store", store, "--tables", "t"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("CREATE PUBLICATION"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("on the primary"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  r = run_pgseed({"sync", "--source", db.standby_conninfo(), "--store", store, "--publication", "nope"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("CREATE PUBLICATION nope"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("on the primary"), std::string::npos) << r.err;

  EXPECT_EQ(db.standby_slots(), 0);
  EXPECT_FALSE(std::filesystem::exists(store_file(store)));
}

INSTANTIATE_TEST_SUITE_P(Standby, StandbyStoreTest, ::testing::ValuesIn(test_support::kStoreKinds));

}  // namespace
}  // namespace pgseed::test
