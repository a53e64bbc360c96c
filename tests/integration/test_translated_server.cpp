// A server that answers in German (lc_messages = de_DE.UTF-8). pgseed classifies the
// server's errors by SQLSTATE and the connection's state, never by their English text, so
// a follower behaves exactly as with an English server: it rides through a terminated
// walsender and a fast restart (transient), and stops with one line naming the publication
// when that is dropped (permanent).
//
// The test runs a server of its own (scripts/pg.sh, with the locale in its options), so
// its restart disturbs no other test. It skips, saying why, where the OS has no de_DE.UTF-8
// locale (scripts/setup.sh makes it) or the server binaries carry no German translation.
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>

#include "harness.h"
#include "stream_support.h"
#include "store_kinds.h"

namespace pgseed::test {
namespace {

bool german_locale_exists() {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen("locale -a 2>/dev/null", "r"), pclose);
  if (!p) return false;
  char line[256];
  while (fgets(line, sizeof line, p.get())) {
    std::string l(line);
    if (l.rfind("de_DE.utf8", 0) == 0 || l.rfind("de_DE.UTF-8", 0) == 0) return true;
  }
  return false;
}


// A server of the test's own, stopped (and removed) when the test ends.
class GermanServer {
 public:
  GermanServer() {
    const char* scripts = std::getenv("PGSEED_SCRIPTS_DIR");
    if (!scripts) return;
    pg_ = std::string(scripts) + "/pg.sh";
    dir_ = "/tmp/pgseed-de-" + std::to_string(getpid());
    std::string out = dir_ + ".start.log";
    std::string cmd = "PG_EXTRA_OPTS='-c lc_messages=de_DE.UTF-8' " + pg_ + " start " + dir_ +
                      " >" + out + " 2>&1";
    int rc = std::system(cmd.c_str());
    start_output_ = read_text(out);
    std::remove(out.c_str());
    if (rc != 0) return;
    std::ifstream in(dir_ + "/conninfo");
    std::getline(in, conninfo_);
  }
  ~GermanServer() {
    if (!dir_.empty()) std::system((pg_ + " stop " + dir_ + " >/dev/null 2>&1").c_str());
  }
  const std::string& conninfo() const { return conninfo_; }
  // What `pg.sh start` printed (why it failed, when it did).
  const std::string& start_output() const { return start_output_; }
  // pg_ctl stop -m fast, then start (the options stay).
  bool restart() { return std::system((pg_ + " restart " + dir_ + " >/dev/null 2>&1").c_str()) == 0; }

 private:
  std::string pg_, dir_, conninfo_, start_output_;
};

void run_workload(const std::string& conninfo, int from, int to, unsigned seed) {
  Db db(conninfo);
  std::mt19937 rng(seed);
  for (int i = from; i < to; ++i) db.exec(workload_txn(i, rng));
}

class TranslatedServerTest : public StoreTest {};

TEST_P(TranslatedServerTest, FollowerClassifiesGermanErrorsBySqlstate) {
  if (!german_locale_exists())
    GTEST_SKIP() << "no de_DE.UTF-8 locale on this machine (scripts/setup.sh makes it as root)";
  GermanServer server;
  ASSERT_FALSE(server.conninfo().empty()) << "could not start a server with lc_messages=de_DE.UTF-8:\n"
                                          << server.start_output();
  {
    Db probe(server.conninfo());
    std::string err = probe.try_exec("SELECT 1/0");
    if (err.find("Division durch Null") == std::string::npos)
      GTEST_SKIP() << "this server's binaries carry no German messages (it said: " << err << ")";
  }

  TestDatabase src(server.conninfo());
  src.db().exec(kWorkloadSchema);
  src.db().exec("CREATE PUBLICATION pub FOR TABLE acct, events");
  std::string store = temp_store(store_kind());
  sync_ok(src, store, {"--publication", "pub"});
  std::string slot = store_status(store).slot;
  std::string log = temp_log_path();
  int pid = spawn_pgseed({"sync", "--follow", "--source", src.conninfo(), "--store", store}, log);
  ASSERT_TRUE(wait_until([&] { return !slot_active_pid(src.db(), slot).empty(); }, 60))
      << "pgseed is not streaming; its log:\n" << read_text(log);
  run_workload(src.conninfo(), 0, 60, 31u);

  // Transient: the walsender terminated (57P01, "Verbindung wird abgebrochen ..."), then
  // the server restarted with a fast shutdown.
  std::string walsender = slot_active_pid(src.db(), slot);
  src.db().exec("SELECT pg_terminate_backend(" + walsender + ")");
  run_workload(src.conninfo(), 60, 120, 32u);
  ASSERT_TRUE(server.restart());
  PQreset(src.db().get());
  ASSERT_EQ(PQstatus(src.db().get()), CONNECTION_OK);
  src.db().exec("SET TimeZone = UTC; SET DateStyle = ISO; SET IntervalStyle = postgres;"
                "SET extra_float_digits = 3; SET bytea_output = hex");
  run_workload(src.conninfo(), 120, 180, 33u);
  std::string lsn = src.db().value("SELECT pg_current_wal_lsn()::text");
  EXPECT_TRUE(wait_confirmed(src.db(), slot, lsn, 120))
      << "pgseed --follow did not resume; its log:\n" << read_text(log);
  ASSERT_EQ(waitpid(pid, nullptr, WNOHANG), 0)
      << "pgseed --follow exited on a transient failure; its log:\n" << read_text(log);

  // Permanent: the publication is dropped ("Publikation »pub« existiert nicht", 42704).
  // The follower stops by itself with one line naming it; the store keeps what it had.
  src.db().exec("DROP PUBLICATION pub");
  src.db().exec("INSERT INTO acct VALUES (900001, 1, 'after the drop')");
  int code = -1;
  ASSERT_TRUE(wait_until([&] {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) != pid) return false;
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }, 120)) << "pgseed --follow kept running without its publication; its log:\n" << read_text(log);
  std::string text = read_text(log);
  EXPECT_NE(code, 0) << text;
  EXPECT_LT(code, 128) << text;
  EXPECT_NE(text.find("pub"), std::string::npos) << text;
  EXPECT_NE(text.find("existiert nicht"), std::string::npos) << "the server's own words\n" << text;
  EXPECT_EQ(text.find("unknown error"), std::string::npos) << text;
  EXPECT_NE(text.find("retrying"), std::string::npos) << text;
  // Nothing of the failure was applied: the store is the source less the last row.
  src.db().exec("DELETE FROM acct WHERE id = 900001");
  expect_workload_equal(src, store);
}

INSTANTIATE_TEST_SUITE_P(Stores, TranslatedServerTest, ::testing::ValuesIn(test_support::kStoreKinds));

}  // namespace
}  // namespace pgseed::test
