#include "harness.h"

#include "pgseed/replica.h"
#include "sync/failpoint.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <atomic>
#include <thread>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace pgseed::test {

namespace {
long g_last_rss_kb = 0;

std::string unique_suffix() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%d_%d_%04x", int(getpid()), counter++, unsigned(rd() & 0xffff));
  return buf;
}

// The directory made by test_dir(), empty until then.
std::string g_test_dir;

// Removes the test process's directory after its last test when every test passed: a
// suite of ~500 test processes each leaving its stores behind filled a machine's disk
// (65 GB in /tmp). A failure keeps them for a look, as PGSEED_KEEP_TEST_FILES=1 does.
class RemoveTestFiles : public ::testing::Environment {
 public:
  void TearDown() override {
    if (g_test_dir.empty() || !::testing::UnitTest::GetInstance()->Passed()) return;
    if (const char* keep = std::getenv("PGSEED_KEEP_TEST_FILES"); keep && *keep && *keep != '0') return;
    std::error_code ec;
    std::filesystem::remove_all(g_test_dir, ec);
  }
};
[[maybe_unused]] ::testing::Environment* const g_remove_test_files =
    ::testing::AddGlobalTestEnvironment(new RemoveTestFiles);
}  // namespace

std::string test_dir() {
  static std::string dir = [] {
    std::string d = "/tmp/pgseed-it-" + std::to_string(getpid());
    std::filesystem::create_directories(d);
    g_test_dir = d;
    return d;
  }();
  return dir;
}

// Starts build/pgseed with `args`, stdout and stderr to the given files (may be the same).
static pid_t fork_pgseed(const std::vector<std::string>& args, const std::string& out_path,
                         const std::string& err_path) {
  pid_t pid = fork();
  if (pid == 0) {
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = err_path == out_path ? out : open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> argv;
    std::string bin = PGSEED_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

std::string server_conninfo() {
  const char* c = std::getenv("PGSEED_TEST_CONNINFO");
  if (!c || !*c) {
    ADD_FAILURE() << "PGSEED_TEST_CONNINFO is not set: run the integration tests through "
                     "scripts/test.sh, which starts a throwaway PostgreSQL";
    return "";
  }
  return c;
}

int spawn_pgseed(const std::vector<std::string>& args, const std::string& log_path) {
  return fork_pgseed(args, log_path, log_path);
}

int wait_pid(int pid) {
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  g_last_rss_kb = ru.ru_maxrss;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool wait_stopped(int pid) {
  int status = 0;
  if (waitpid(pid, &status, WUNTRACED) != pid) return false;
  return WIFSTOPPED(status);
}

long last_child_peak_rss_kb() { return g_last_rss_kb; }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string first_line_of(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

RunResult run_pgseed(const std::vector<std::string>& args) {
  std::string base = test_dir() + "/run_" + unique_suffix();
  pid_t pid = fork_pgseed(args, base + ".out", base + ".err");
  RunResult r;
  r.exit_code = wait_pid(pid);
  r.out = read_text(base + ".out");
  r.err = read_text(base + ".err");
  std::filesystem::remove(base + ".out");
  std::filesystem::remove(base + ".err");
  return r;
}

Db::Db(const std::string& conninfo) {
  std::string opts =
      "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 "
      "-c bytea_output=hex";
  const char* keys[] = {"dbname", "options", "client_encoding", nullptr};
  const char* vals[] = {conninfo.c_str(), opts.c_str(), "UTF8", nullptr};
  conn_ = PQconnectdbParams(keys, vals, 1);
  if (PQstatus(conn_) != CONNECTION_OK) ADD_FAILURE() << "cannot connect: " << PQerrorMessage(conn_);
}

Db::~Db() { PQfinish(conn_); }

std::string Db::try_exec(const std::string& sql) {
  PGresult* r = PQexec(conn_, sql.c_str());
  auto st = PQresultStatus(r);
  std::string err;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) err = PQresultErrorMessage(r);
  PQclear(r);
  return err;
}

void Db::exec(const std::string& sql) {
  std::string err = try_exec(sql);
  if (!err.empty()) ADD_FAILURE() << "SQL failed: " << sql.substr(0, 300) << "\n" << err;
}

std::string Db::value(const std::string& sql) {
  PGresult* r = PQexec(conn_, sql.c_str());
  std::string out;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) ADD_FAILURE() << "query failed: " << sql << "\n" << PQresultErrorMessage(r);
  else if (PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
  PQclear(r);
  return out;
}

std::vector<std::string> Db::csv_records(const std::string& query) {
  std::string sql = "COPY (" + query + ") TO STDOUT (FORMAT csv)";
  PGresult* r = PQexec(conn_, sql.c_str());
  std::string data;
  if (PQresultStatus(r) != PGRES_COPY_OUT) {
    ADD_FAILURE() << "COPY failed: " << PQresultErrorMessage(r);
    PQclear(r);
    return {};
  }
  PQclear(r);
  char* buf;
  int len;
  while ((len = PQgetCopyData(conn_, &buf, 0)) > 0) {
    data.append(buf, size_t(len));
    PQfreemem(buf);
  }
  while ((r = PQgetResult(conn_))) PQclear(r);
  return sorted_csv_records(data);
}

TestDatabase::TestDatabase(std::string server) : server_(std::move(server)) {
  name_ = "t_" + unique_suffix();
  Db admin(server_);
  admin.exec("CREATE DATABASE " + name_);
  conninfo_ = server_ + " dbname=" + name_;
  db_ = std::make_unique<Db>(conninfo_);
}

TestDatabase::~TestDatabase() {
  db_.reset();
  Db admin(server_);
  // Slots of this database (pgseed's and leftovers) go first, then the database.
  for (int i = 0; i < 50; ++i) {
    std::string err = admin.try_exec(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = '" +
        name_ + "' AND active_pid IS NOT NULL; SELECT pg_drop_replication_slot(slot_name) FROM "
        "pg_replication_slots WHERE database = '" + name_ + "'");
    if (err.empty()) break;
    usleep(100000);
  }
  admin.try_exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
}

std::vector<std::string> sorted_csv_records(const std::string& csv) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char c : csv) {
    if (c == '"') quoted = !quoted;
    if (c == '\n' && !quoted) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  std::sort(out.begin(), out.end());
  return out;
}

std::string temp_store(const std::string& kind) {
  std::string path = test_dir() + "/store_" + unique_suffix();
  return kind == "rocksdb" ? "rocksdb:" + path : "sqlite:" + path + ".db";
}

void expect_records_equal(const std::vector<std::string>& got, const std::vector<std::string>& want,
                          const std::string& table) {
  EXPECT_EQ(got.size(), want.size()) << "row count differs for " << table;
  if (got == want) return;
  // Both sorted: show what only one side has (a few of each), not thousands of lines.
  std::vector<std::string> only_store, only_source;
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(only_store));
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(), std::back_inserter(only_source));
  auto some = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 5; ++i) s += "\n    '" + v[i] + "'";
    if (v.size() > 5) s += "\n    ... " + std::to_string(v.size() - 5) + " more";
    return v.empty() ? std::string(" none") : s;
  };
  ADD_FAILURE() << "table " << table << " differs:\n  only in the store (" << only_store.size()
                << "):" << some(only_store) << "\n  only in the source (" << only_source.size()
                << "):" << some(only_source);
}

void expect_dump_equals(TestDatabase& src, const std::string& store, const std::string& table,
                        const std::string& query) {
  RunResult r = run_pgseed({"dump", "--store", store, "--table", table, "--format", "csv"});
  ASSERT_EQ(r.exit_code, 0) << "dump of " << table << " failed: " << r.err;
  expect_records_equal(sorted_csv_records(r.out), src.db().csv_records(query), table);
}

void expect_table_equal(TestDatabase& src, const std::string& store, const std::string& table,
                        const std::string& columns) {
  expect_dump_equals(src, store, table, "SELECT " + columns + " FROM " + table);
}

std::vector<std::string> with_default_selection(std::vector<std::string> args, const std::string& store) {
  for (const auto& a : args)
    if (a == "--tables" || a == "--publication" || a == "--all-tables") return args;
  bool first = true;
  try {
    first = Replica::open(store)->state().publication.empty();
  } catch (const std::exception&) {
    // No store yet (or one a running sync holds: not a first run then).
    std::string path = store.substr(store.find(':') + 1);
    first = !std::filesystem::exists(path);
  }
  if (first) args.push_back("--all-tables");
  return args;
}

void sync_ok(TestDatabase& src, const std::string& store, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"sync", "--source", src.conninfo(), "--store", store};
  args.insert(args.end(), extra.begin(), extra.end());
  RunResult r = run_pgseed(with_default_selection(args, store));
  ASSERT_EQ(r.exit_code, 0) << "pgseed sync failed: " << r.err;
}

static void pg_script(const std::string& verb) {
  const char* dir = std::getenv("PGSEED_PG_DIR");
  const char* scripts = std::getenv("PGSEED_SCRIPTS_DIR");
  ASSERT_TRUE(dir && scripts) << "PGSEED_PG_DIR / PGSEED_SCRIPTS_DIR not set (use scripts/test.sh)";
  std::string cmd = std::string(scripts) + "/pg.sh " + verb + " " + dir + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

StoppedCopy stop_mid_copy(SyncOptions options) {
  StoppedCopy out;
  Sync sync(options);
  // Stopped on the copy's own thread right after its first batch of rows is stored: at
  // that moment, not whenever a progress report or a poll happens to come.
  std::atomic<bool> stopped{false};
  std::chrono::steady_clock::time_point stopped_at;
  set_failpoint_handler([&](const char* name) {
    if (std::strcmp(name, "copy-batch-stored") != 0 || stopped.exchange(true)) return;
    stopped_at = std::chrono::steady_clock::now();
    sync.stop();
  });
  std::thread runner([&] {
    try {
      sync.run();
    } catch (...) {
      out.error = std::current_exception();
    }
  });
  runner.join();
  set_failpoint_handler(nullptr);
  out.stopped_mid_copy = stopped;
  if (stopped)
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count();
  return out;
}

void crash_server() { pg_script("crash"); }
void restart_server() { pg_script("restart"); }

}  // namespace pgseed::test
