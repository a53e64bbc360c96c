// The CLI as the people who run it see it (issue 13): safe defaults, status for machines
// (json, prometheus, --check), signals and exit codes, JSON fatal lines, libpq conventions
// (PG* variables, a bare dbname, PGSEED_STORE), drop --slot; running as a systemd service
// (sd_notify), help and "did you mean".
#include <libpq-fe.h>
#include <poll.h>
#include <pty.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "store_kinds.h"
#include "harness.h"
#include "stream_support.h"

namespace pgseed::test {

namespace {


std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The value of "key": (first occurrence) in JSON printed by pgseed, unquoted.
std::string jfield(const std::string& json, const std::string& key) {
  auto p = json.find("\"" + key + "\":");
  if (p == std::string::npos) return "<absent>";
  p += key.size() + 3;
  if (json[p] == '"') {
    std::string out;
    for (size_t i = p + 1; i < json.size() && json[i] != '"'; ++i) {
      if (json[i] == '\\') ++i;
      out += json[i];
    }
    return out;
  }
  auto e = json.find_first_of(",}]", p);
  return json.substr(p, e - p);
}

// A closed port on this machine: nothing listens on port 1.
constexpr const char* kSourceDown = "host=127.0.0.1 port=1 dbname=x connect_timeout=2";

const std::regex kRfc3339(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z)");

std::string path_of(const std::string& store) { return store.substr(store.find(':') + 1); }

int count_slots(TestDatabase& src) {
  return std::stoi(src.db().value(
      "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"));
}

// PG* variables for this test's database, set for the children run while it lives.
class PgEnvironment {
 public:
  explicit PgEnvironment(const std::string& conninfo, bool with_dbname = true) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    if (err) PQfreemem(err);
    std::map<std::string, std::string> env_of = {{"host", "PGHOST"}, {"port", "PGPORT"},
                                                 {"user", "PGUSER"}, {"password", "PGPASSWORD"}};
    if (with_dbname) env_of["dbname"] = "PGDATABASE";
    for (auto* o = opts; o && o->keyword; ++o)
      if (o->val && *o->val && env_of.count(o->keyword)) set(env_of[o->keyword], o->val);
    PQconninfoFree(opts);
  }
  void set(const std::string& name, const std::string& value) {
    setenv(name.c_str(), value.c_str(), 1);
    names_.push_back(name);
  }
  ~PgEnvironment() {
    for (const auto& n : names_) unsetenv(n.c_str());
  }

 private:
  std::vector<std::string> names_;
};

}  // namespace

class CliOpsTest : public StoreTest {};

// A first sync with neither --tables nor --publication creates nothing: one line, exit 5.
TEST_P(CliOpsTest, FirstSyncWithoutSelectionIsRefused) {
  TestDatabase src;
  src.db().exec("CREATE TABLE a (id int PRIMARY KEY);");
  std::string store = temp_store(store_kind());
  RunResult r = run_pgseed({"sync", "--source", src.conninfo(), "--store", store});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  ASSERT_EQ(lines_of(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("--all-tables"), std::string::npos) << r.err;
  EXPECT_EQ(count_slots(src), 0);
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_publication"), "0");
  EXPECT_FALSE(std::filesystem::exists(path_of(store)));

  // --all-tables: the FOR ALL TABLES publication, as asked for; later runs may repeat it.
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--all-tables"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(src.db().value("SELECT puballtables FROM pg_publication"), "t");
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--all-tables"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // ... but not narrowed by --tables later.
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--tables", "a"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("FOR ALL TABLES"), std::string::npos) << r.err;
  // Combined with --tables: a usage error.
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", temp_store(store_kind()),
                  "--all-tables", "--tables", "a"});
  EXPECT_NE(r.exit_code, 0);
}

// A published table without a replica identity is named, with what PostgreSQL will refuse
// and what to run.
TEST_P(CliOpsTest, KeylessTableWarning) {
  TestDatabase src;
  src.db().exec("CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE history (t int, v text);"
                "CREATE TABLE fine (x int); ALTER TABLE fine REPLICA IDENTITY FULL;"
                "INSERT INTO history VALUES (1, 'a');");
  std::string store = temp_store(store_kind());
  RunResult r = run_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--tables",
                            "keyed,history,fine"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string warning;
  for (const auto& l : lines_of(r.err))
    if (l.find("without a replica identity") != std::string::npos) warning = l;
  ASSERT_FALSE(warning.empty()) << r.err;
  EXPECT_NE(warning.find("public.history"), std::string::npos) << warning;
  EXPECT_EQ(warning.find("public.keyed"), std::string::npos) << warning;
  EXPECT_EQ(warning.find("public.fine"), std::string::npos) << warning;
  EXPECT_NE(warning.find("UPDATE and DELETE"), std::string::npos) << warning;
  EXPECT_NE(warning.find("REPLICA IDENTITY FULL"), std::string::npos) << warning;
  // What the warning says is true.
  EXPECT_NE(src.db().try_exec("UPDATE history SET v = 'b'"), "");
}

// A changed --tables on a later run is never ignored: added tables extend pgseed's own
// publication and are copied; a table left out, or --tables with a publication pgseed did
// not create, is refused.
TEST_P(CliOpsTest, ChangedTablesExtendOrAreRefused) {
  TestDatabase src;
  src.db().exec("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, v text);"
                "INSERT INTO a VALUES (1), (2); INSERT INTO b VALUES (1, 'one'), (2, 'two');");
  std::string store = temp_store(store_kind());
  sync_ok(src, store, {"--tables", "a"});

  RunResult r = run_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--tables", "a,b"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_table_equal(src, store, "public.b");
  src.db().exec("INSERT INTO b VALUES (3, 'three')");
  sync_ok(src, store, {"--tables", "a, b"});  // the same list: nothing to change
  expect_table_equal(src, store, "public.b");

  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--tables", "b"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_EQ(lines_of(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("public.a"), std::string::npos) << r.err;
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--tables", "a,b,nope"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;

  // A publication of the user's own: --tables cannot change it.
  src.db().exec("CREATE PUBLICATION mine FOR TABLE a");
  std::string store2 = temp_store(store_kind());
  sync_ok(src, store2, {"--publication", "mine"});
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", store2, "--tables", "a,b"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("not created by pgseed"), std::string::npos) << r.err;
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_publication_tables WHERE pubname = 'mine'"), "1");
}

// status --format json: one object, also with the source down or the store unreadable;
// RFC 3339 times; null for what is unknown; warnings with codes.
TEST_P(CliOpsTest, StatusJsonAlwaysOneObject) {
  TestDatabase src;
  src.db().exec("CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'x');");
  std::string store = temp_store(store_kind());
  sync_ok(src, store, {"--tables", "a"});
  src.db().exec("UPDATE a SET v = 'y'");
  sync_ok(src, store);

  RunResult r = run_pgseed({"status", "--store", store, "--source", src.conninfo(), "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_EQ(lines_of(r.out).size(), 1u) << r.out;
  EXPECT_TRUE(std::regex_match(jfield(r.out, "time"), kRfc3339)) << r.out;
  EXPECT_TRUE(std::regex_match(jfield(r.out, "last_commit_time"), kRfc3339)) << r.out;
  EXPECT_EQ(jfield(r.out, "error"), "null") << r.out;
  EXPECT_NE(jfield(r.out, "lag_bytes"), "null") << r.out;
  EXPECT_NE(jfield(r.out, "lag_seconds"), "null") << r.out;
  // No sync runs: the slot is idle, a warning with its code.
  EXPECT_NE(r.out.find("{\"code\":\"slot_inactive\",\"message\":"), std::string::npos) << r.out;

  // The source down: still one object, the store part, an error, exit 9 (unhealthy).
  r = run_pgseed({"status", "--store", store, "--source", kSourceDown, "--format", "json"});
  EXPECT_EQ(r.exit_code, 9) << r.err;
  ASSERT_EQ(lines_of(r.out).size(), 1u) << r.out;
  EXPECT_EQ(r.out.front(), '{');
  EXPECT_EQ(jfield(r.out, "phase"), "streaming") << r.out;
  EXPECT_NE(r.out.find("\"rows\":1"), std::string::npos) << r.out;
  EXPECT_NE(jfield(r.out, "error").find("cannot connect"), std::string::npos) << r.out;
  EXPECT_EQ(jfield(r.out, "lag_bytes"), "null") << r.out;
  EXPECT_EQ(jfield(r.out, "healthy"), "false") << r.out;

  // The store missing: one object with the error and nulls.
  r = run_pgseed({"status", "--store", temp_store(store_kind()), "--format", "json"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  ASSERT_EQ(lines_of(r.out).size(), 1u) << r.out;
  EXPECT_NE(jfield(r.out, "error"), "null") << r.out;
  EXPECT_EQ(jfield(r.out, "phase"), "null") << r.out;
  EXPECT_EQ(jfield(r.out, "applied_lsn"), "null") << r.out;
}

// A following, caught-up replica lags 0 seconds, however long ago the last commit was.
TEST_P(CliOpsTest, CaughtUpReplicaLagsZeroSecondsAndChecksOk) {
  TestDatabase src;
  src.db().exec("CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1);");
  std::string store = temp_store(store_kind());
  sync_ok(src, store, {"--tables", "a"});
  std::string slot = store_status(store).slot;
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--follow"}, log);
  ASSERT_TRUE(wait_until([&] { return !slot_active_pid(src.db(), slot).empty(); }, 30));
  src.db().exec("INSERT INTO a VALUES (2)");
  sleep(2);  // the last commit is now seconds old
  // status reads the store while the sync holds it (RocksDB: as a secondary instance).
  {
    RunResult r;
    bool zero = wait_until([&] {
      r = run_pgseed({"status", "--store", store, "--source", src.conninfo(), "--format", "json"});
      return jfield(r.out, "lag_seconds") == "0.000";
    }, 30, 200);
    EXPECT_TRUE(zero) << r.out;
    // Other tests write to the same server: its WAL position moves on, and the lag the
    // check sees is 0 again once the follower has confirmed it (waited for, not assumed).
    RunResult c;
    bool ok = wait_until([&] {
      c = run_pgseed({"status", "--store", store, "--source", src.conninfo(), "--check",
                      "--warn-lag", "1", "--crit-lag", "2"});
      return c.exit_code == 0 && c.out.rfind("PGSEED OK - ", 0) == 0;
    }, 30, 200);
    EXPECT_TRUE(ok) << c.exit_code << ": " << c.out;
  }
  // SIGHUP stops a following sync cleanly, like SIGTERM.
  kill(pid, SIGHUP);
  EXPECT_EQ(wait_pid(pid), 0) << read_text(log);
  EXPECT_TRUE(slot_active_pid(src.db(), slot).empty());
  EXPECT_EQ(store_status(store).phase, "streaming");
}

// status --format prometheus: the text exposition format, line by line.
TEST_P(CliOpsTest, PrometheusExposition) {
  TestDatabase src;
  src.db().exec("CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1), (2);");
  std::string store = temp_store(store_kind());
  sync_ok(src, store, {"--tables", "a"});
  src.db().exec("INSERT INTO a VALUES (3)");
  sync_ok(src, store);
  RunResult r = run_pgseed({"status", "--store", store, "--source", src.conninfo(), "--format", "prometheus"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  const std::regex help(R"(# HELP (pgseed_[a-z_]+) \S.*)");
  const std::regex type(R"(# TYPE (pgseed_[a-z_]+) (gauge|counter))");
  const std::regex sample(
      R"re((pgseed_[a-z_]+)\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\} (-?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?))re");
  std::map<std::string, std::string> value;  // metric (first sample) -> value
  std::set<std::string> typed;
  for (const auto& line : lines_of(r.out)) {
    std::smatch m;
    if (std::regex_match(line, m, help)) continue;
    if (std::regex_match(line, m, type)) {
      EXPECT_TRUE(typed.insert(m[1].str()).second) << "TYPE twice: " << line;
      continue;
    }
    ASSERT_TRUE(std::regex_match(line, m, sample)) << "not exposition format: " << line;
    EXPECT_TRUE(typed.count(m[1].str())) << "sample before its TYPE: " << line;
    EXPECT_NE(std::string(m[2]).find("store=\"" + store + "\""), std::string::npos) << line;
    EXPECT_NE(std::string(m[2]).find("slot=\"pgseed_"), std::string::npos) << line;
    value.emplace(m[1].str(), m[3].str());
  }
  for (const char* name : {"pgseed_up", "pgseed_applied_lsn", "pgseed_lag_bytes", "pgseed_lag_seconds",
                           "pgseed_retained_wal_bytes", "pgseed_slot_active", "pgseed_slot_invalid",
                           "pgseed_tables", "pgseed_last_commit_timestamp_seconds"})
    EXPECT_TRUE(value.count(name)) << name << " missing:\n" << r.out;
  EXPECT_EQ(value["pgseed_up"], "1");
  EXPECT_EQ(value["pgseed_tables"], "1");
  EXPECT_EQ(value["pgseed_slot_active"], "0");
  EXPECT_EQ(value["pgseed_slot_invalid"], "0");
  double commit = std::stod(value["pgseed_last_commit_timestamp_seconds"]);
  EXPECT_NEAR(commit, double(time(nullptr)), 600);

  // The source down: still the exposition, pgseed_up 0.
  r = run_pgseed({"status", "--store", store, "--source", kSourceDown, "--format", "prometheus"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\npgseed_up{store=\"" + store + "\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("} 0\n"), std::string::npos) << r.out;
}

// --check: a monitoring plugin's exit codes and one line.
TEST_P(CliOpsTest, CheckExitCodes) {
  TestDatabase src;
  src.db().exec("CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1);");
  std::string store = temp_store(store_kind());
  sync_ok(src, store, {"--tables", "a"});
  src.db().exec("INSERT INTO a VALUES (2)");  // a commit applied: its time bounds the lag
  sync_ok(src, store);
  auto check = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"status", "--store", store, "--source", src.conninfo(), "--check"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = run_pgseed(args);
    EXPECT_EQ(lines_of(r.out).size(), 1u) << r.out;
    return r;
  };
  // No sync streams from the slot: a warning.
  RunResult r = check({});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.out.rfind("PGSEED WARNING - ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("| "), std::string::npos) << r.out;  // perfdata
  // Lag at or over the critical threshold.
  r = check({"--crit-lag", "0"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_EQ(r.out.rfind("PGSEED CRITICAL - ", 0), 0u) << r.out;
  // The source unreachable: unknown.
  r = run_pgseed({"status", "--store", store, "--source", kSourceDown, "--format", "nagios"});
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_EQ(r.out.rfind("PGSEED UNKNOWN - ", 0), 0u) << r.out;
  // The slot gone: critical.
  src.db().exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE database = current_database()");
  r = check({});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  // No store: critical.
  r = run_pgseed({"status", "--store", temp_store(store_kind()), "--check"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
}

// SIGINT during the initial copy: exit 130, nothing kept; SIGTERM: 143.
TEST_P(CliOpsTest, SignalDuringCopyExitsNonZero) {
  TestDatabase src;
  src.db().exec("CREATE TABLE big (id int PRIMARY KEY, pad text);"
                "INSERT INTO big SELECT i, repeat('z', 300) FROM generate_series(1, 400000) i;");
  for (int sig : {SIGINT, SIGTERM}) {
    std::string store = temp_store(store_kind());
    std::string log = temp_log_path();
    int pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--tables", "big", "-j", "1"}, log);
    // The slot exists once the copy is about to start; the store is then in phase copying.
    ASSERT_TRUE(wait_until([&] { return read_text(log).find("created slot") != std::string::npos; }, 30, 10))
        << read_text(log);
    kill(pid, sig);
    EXPECT_EQ(wait_pid(pid), 128 + sig) << read_text(log);
    EXPECT_NE(read_text(log).find("nothing was kept"), std::string::npos) << read_text(log);
    EXPECT_EQ(count_slots(src), 0);
    EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_publication"), "0");
    EXPECT_FALSE(std::filesystem::exists(path_of(store)));
  }
}

// A second signal aborts at once (like kill -9): exit 130 without the clean stop; the next
// run discards the interrupted first run and completes.
TEST(CliOps, SecondSigintAbortsAtOnce) {
  TestDatabase src;
  src.db().exec("CREATE TABLE big (id int PRIMARY KEY, pad text);"
                "INSERT INTO big SELECT i, repeat('z', 300) FROM generate_series(1, 1000) i;");
  std::string store = temp_store("sqlite");
  std::string log = temp_log_path();
  // An open transaction with an xid: creating the slot waits for it to end (the snapshot
  // builder needs a consistent point). The first SIGINT cancels that wait, and the clean
  // stop then drops the publication the run created; the same open transaction has
  // changed the publication's catalog row, so that the drop waits for it: the clean stop
  // cannot be over before the second SIGINT arrives.
  Db holder(src.conninfo());
  holder.exec("BEGIN; INSERT INTO big VALUES (0, 'uncommitted')");
  int pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--tables", "big"}, log);
  ASSERT_TRUE(wait_until([&] { return read_text(log).find("created publication") != std::string::npos; }, 30, 10))
      << read_text(log);
  std::string pub = src.db().value("SELECT quote_ident(pubname) FROM pg_publication");
  holder.exec("ALTER PUBLICATION " + pub + " SET (publish = 'insert, update, delete, truncate')");
  kill(pid, SIGINT);
  ASSERT_TRUE(wait_until([&] { return read_text(log).find("received SIGINT") != std::string::npos; }, 10, 5))
      << read_text(log);
  kill(pid, SIGINT);
  EXPECT_EQ(wait_pid(pid), 130) << read_text(log);
  EXPECT_NE(read_text(log).find("again: aborting at once"), std::string::npos) << read_text(log);
  EXPECT_EQ(read_text(log).find("nothing was kept"), std::string::npos) << read_text(log);
  holder.exec("ROLLBACK");

  sync_ok(src, store, {"--tables", "big"});
  expect_table_equal(src, store, "public.big");
  EXPECT_EQ(count_slots(src), 1);
}

// --log-format json: every line JSON, the fatal error line too (with category and code).
TEST(CliOps, JsonLogFatalErrorLine) {
  RunResult r = run_pgseed({"sync", "--source", kSourceDown, "--store", temp_store("sqlite"),
                            "--tables", "a", "--log-format", "json"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  auto lines = lines_of(r.err);
  ASSERT_FALSE(lines.empty());
  for (const auto& l : lines) {
    EXPECT_EQ(l.front(), '{') << l;
    EXPECT_EQ(l.back(), '}') << l;
  }
  const std::string& last = lines.back();
  EXPECT_EQ(jfield(last, "level"), "error") << last;
  EXPECT_EQ(jfield(last, "category"), "connection") << last;
  EXPECT_EQ(jfield(last, "exit_code"), "3") << last;
  EXPECT_TRUE(std::regex_match(jfield(last, "time"), kRfc3339)) << last;
  EXPECT_NE(jfield(last, "message").find("cannot connect"), std::string::npos) << last;

  r = run_pgseed({"-V"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("pgseed ", 0), 0u) << r.out;
}

// drop --slot: an orphaned slot, no store needed; an active or foreign slot is refused.
TEST(CliOps, DropSlotWithoutStore) {
  TestDatabase src;
  src.db().exec("CREATE TABLE a (id int PRIMARY KEY);");
  src.db().exec("SELECT pg_create_logical_replication_slot('pgseed_orphan_" + src.name() + "', 'pgoutput')");
  RunResult r = run_pgseed({"drop", "--source", src.conninfo(), "--slot", "pgseed_orphan_" + src.name()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_slots(src), 0);
  r = run_pgseed({"drop", "--source", src.conninfo(), "--slot", "pgseed_orphan_" + src.name()});
  EXPECT_EQ(r.exit_code, 5) << r.err;

  // Another plugin's slot is not pgseed's to drop.
  src.db().exec("SELECT pg_create_logical_replication_slot('other_" + src.name() + "', 'test_decoding')");
  r = run_pgseed({"drop", "--source", src.conninfo(), "--slot", "other_" + src.name()});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_EQ(count_slots(src), 1);

  // In use by a running sync: refused.
  std::string store = temp_store("sqlite");
  sync_ok(src, store, {"--tables", "a"});
  std::string slot = store_status(store).slot;
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--follow"}, log);
  ASSERT_TRUE(wait_until([&] { return !slot_active_pid(src.db(), slot).empty(); }, 30));
  r = run_pgseed({"drop", "--source", src.conninfo(), "--slot", slot});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_pid(pid), 0) << read_text(log);
}

// Each sync names inactive pgseed slots that hold WAL on the source (abandoned replicas).
TEST(CliOps, InactivePgseedSlotsHoldingWalAreNamed) {
  TestDatabase src;
  src.db().exec("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE pad (p text);");
  std::string orphan = "pgseed_orphan_" + src.name();
  src.db().exec("SELECT pg_create_logical_replication_slot('" + orphan + "', 'pgoutput')");
  // Over 16 MB of WAL that the orphan retains.
  src.db().exec("INSERT INTO pad SELECT repeat(md5(i::text), 32) FROM generate_series(1, 25000) i");
  RunResult r = run_pgseed({"sync", "--source", src.conninfo(), "--store", temp_store("sqlite"), "--tables", "a"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string warning;
  for (const auto& l : lines_of(r.err))
    if (l.find("inactive pgseed slots") != std::string::npos) warning = l;
  EXPECT_NE(warning.find(orphan), std::string::npos) << r.err;
  EXPECT_NE(warning.find("pgseed drop --slot"), std::string::npos) << r.err;
}

// -W asks on the terminal, without echo, and the password reaches libpq inside the
// conninfo (quotes and backslashes escaped): never printed.
TEST(CliOps, PasswordPromptOnTerminal) {
  TestDatabase src;
  src.db().exec("CREATE TABLE a (id int PRIMARY KEY);");
  std::string store = temp_store("sqlite");
  sync_ok(src, store, {"--tables", "a"});
  const std::string secret = "s3cr'et\\pw";
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string conninfo = src.conninfo();
    execl(PGSEED_BIN, PGSEED_BIN, "-W", "status", "--store", store.c_str(), "--source",
          conninfo.c_str(), "--format", "json", static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string out;
  auto read_some = [&](int timeout_ms) {
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[4096];
    ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) return false;
    out.append(buf, size_t(n));
    return true;
  };
  while (out.find("Password: ") == std::string::npos && read_some(10000)) {}
  ASSERT_NE(out.find("Password: "), std::string::npos) << out;
  std::string typed = secret + "\n";
  ASSERT_EQ(write(master, typed.data(), typed.size()), ssize_t(typed.size()));
  while (read_some(20000)) {}
  int status = 0;
  waitpid(pid, &status, 0);
  close(master);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_NE(out.find("\"healthy\":true"), std::string::npos) << out;
  EXPECT_EQ(out.find("s3cr"), std::string::npos) << out;
}

// A sync configured only through the environment: PG* for the source (as psql), then a
// bare database name, PGSEED_STORE for the store; the slot name says whose it is.
TEST(CliOps, SyncConfiguredThroughEnvironment) {
  TestDatabase src;
  src.db().exec("CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'one');");
  std::string store = temp_store("sqlite");
  {
    PgEnvironment env(src.conninfo());
    RunResult r = run_pgseed({"sync", "--store", store, "--tables", "a"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.find("password"), std::string::npos) << r.err;
  }
  expect_table_equal(src, store, "public.a");
  std::string slot = store_status(store).slot;
  EXPECT_TRUE(std::regex_match(slot, std::regex("pgseed_([a-z0-9_]+_)?[0-9a-f]{8}"))) << slot;
  EXPECT_LE(slot.size(), 63u);

  src.db().exec("INSERT INTO a VALUES (2, 'two')");
  {
    PgEnvironment env(src.conninfo(), /*with_dbname=*/false);
    env.set("PGSEED_STORE", store);
    RunResult r = run_pgseed({"sync", "--source", src.name()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_pgseed({"status", "--format", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\"rows\":2"), std::string::npos) << r.out;
  }
  expect_table_equal(src, store, "public.a");
}

// A unix datagram socket standing in for systemd's notify socket (NOTIFY_SOCKET).
class NotifySocket {
 public:
  NotifySocket() {
    static int counter = 0;
    path_ = "/tmp/pgseed-notify-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".sock";
    std::filesystem::remove(path_);
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      ADD_FAILURE() << "cannot bind " << path_;
  }
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
    std::filesystem::remove(path_);
  }
  const std::string& path() const { return path_; }
  // Reads datagrams until one has a line for which `want` is true; returns that line.
  // The deadline only bounds a failure: the test goes on as soon as the line arrives.
  std::string wait_for(const std::function<bool(const std::string&)>& want, int seconds = 60) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) continue;
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      std::string datagram(buf, size_t(n));
      received_ += datagram + "\n";
      for (const auto& l : lines_of(datagram))
        if (want(l)) return l;
    }
    return {};
  }
  const std::string& received() const { return received_; }

 private:
  std::string path_, received_;
  int fd_ = -1;
};

// Environment variables set for the children started while it lives.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<std::string, std::string>> vars) {
    for (const auto& [k, v] : vars) setenv(k.c_str(), v.c_str(), 1), names_.push_back(k);
  }
  ~ScopedEnv() {
    for (const auto& n : names_) unsetenv(n.c_str());
  }

 private:
  std::vector<std::string> names_;
};

// Run by systemd (Type=notify): READY=1 once the copy is done and streaming runs, STATUS=
// with the phase, position and lag (following the source's changes), WATCHDOG=1 when
// WatchdogSec= is set, STOPPING=1 at SIGTERM; exit 0.
TEST(CliOps, SystemdNotifyReadyStatusWatchdog) {
#ifndef PGSEED_HAVE_SYSTEMD
  GTEST_SKIP() << "pgseed was built without libsystemd (sd_notify compiled out)";
#else
  TestDatabase src;
  src.db().exec("CREATE TABLE a (id int PRIMARY KEY, v text);"
                "INSERT INTO a SELECT i, 'x' FROM generate_series(1, 1000) i;");
  std::string store = temp_store("sqlite");
  NotifySocket sock;
  std::string log = temp_log_path();
  int pid;
  {
    ScopedEnv env({{"NOTIFY_SOCKET", sock.path()}, {"WATCHDOG_USEC", "30000000"}});
    pid = spawn_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--tables", "a", "--follow"}, log);
  }
  EXPECT_EQ(sock.wait_for([](const std::string& l) { return l == "READY=1"; }), "READY=1")
      << sock.received() << read_text(log);
  // READY means the copy is in the store.
  EXPECT_EQ(store_status(store).phase, "streaming");
  std::string status = sock.wait_for([](const std::string& l) { return l.rfind("STATUS=streaming at ", 0) == 0; });
  EXPECT_NE(status.find(", lag "), std::string::npos) << sock.received();
  EXPECT_NE(sock.wait_for([](const std::string& l) { return l == "WATCHDOG=1"; }), "") << sock.received();

  // The status follows the stream.
  src.db().exec("INSERT INTO a VALUES (0, 'new')");
  status = sock.wait_for([](const std::string& l) {
    return l.rfind("STATUS=streaming at ", 0) == 0 && l.find(", 1 transactions") != std::string::npos;
  });
  EXPECT_NE(status, "") << sock.received() << read_text(log);

  kill(pid, SIGTERM);
  EXPECT_EQ(sock.wait_for([](const std::string& l) { return l == "STOPPING=1"; }), "STOPPING=1")
      << sock.received();
  EXPECT_EQ(wait_pid(pid), 0) << read_text(log);
  expect_table_equal(src, store, "public.a");
#endif
}

// Every command's --help shows its options with their defaults, an example and the
// global options; the man page is made of these (help2man).
TEST(CliOps, HelpShowsGlobalOptionsDefaultsAndExamples) {
  for (const char* cmd : {"sync", "resync", "dump", "status", "verify", "drop"}) {
    RunResult r = run_pgseed({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Examples:\n  pgseed " + std::string(cmd) + " "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Global options"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--log-format"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Exit codes:"), std::string::npos) << r.out;
  }
  RunResult r = run_pgseed({"status", "--help"});
  EXPECT_NE(r.out.find("--format TEXT:{text,json,prometheus,nagios}=text"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--warn-lag FLOAT=300"), std::string::npos) << r.out;
  r = run_pgseed({"sync", "--help"});
  EXPECT_NE(r.out.find("--schema-check-interval SECONDS:FLOAT in [0 - 86400]=30"), std::string::npos) << r.out;
}

// A mistyped command or option: one line naming it and what was meant, exit 2 (usage),
// even where the parser would first have missed a required option.
TEST(CliOps, TyposGetDidYouMean) {
  struct Case {
    std::vector<std::string> args;
    std::string line;
  };
  std::vector<Case> cases = {
      {{"sycn", "--store", "x"}, "pgseed: error: unknown command 'sycn'; did you mean 'sync'?"},
      {{"stats"}, "pgseed: error: unknown command 'stats'; did you mean 'status'?"},
      {{"sync", "--folow"}, "pgseed: error: unknown option '--folow' for sync; did you mean '--follow'?"},
      {{"status", "--store", "x", "--fromat", "json"},
       "pgseed: error: unknown option '--fromat' for status; did you mean '--format'?"},
      {{"--quite", "dump", "--store", "x"}, "pgseed: error: unknown option '--quite'; did you mean '--quiet'?"},
      {{"frobnicate"}, "pgseed: error: unknown command 'frobnicate'"},
  };
  for (const auto& c : cases) {
    RunResult r = run_pgseed(c.args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    ASSERT_FALSE(lines_of(r.err).empty()) << c.line;
    EXPECT_EQ(lines_of(r.err).front(), c.line) << r.err;
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, CliOpsTest, ::testing::ValuesIn(test_support::kStoreKinds));

}  // namespace pgseed::test
