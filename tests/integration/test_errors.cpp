// Bad input (DESIGN.md "What stays true under faults"): each failure exits non-zero with
// exactly one line on stderr that names the problem, never prints the password, and leaves
// no slot and no publication on the server (and an existing store as it was).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>

#include <sqlite3.h>

#include "store_kinds.h"
#include "harness.h"

namespace pgseed::test {

namespace {

namespace fs = std::filesystem;

// Every conninfo in this file carries it; no output may show it.
constexpr const char* kSecret = "Sup3rS3cretPW";

class StoreErrorTest : public StoreTest {};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The failure contract: non-zero exit, one line on stderr ("pgseed: error: ..." — not an
// internal error) that mentions `what` (case-insensitive), nothing on stdout, no password.
void expect_clean_failure(const RunResult& r, const std::string& what) {
  EXPECT_NE(r.exit_code, 0) << "stderr: " << r.err;
  EXPECT_NE(r.exit_code, 1) << "an internal error, not a categorised one: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr is not one line:\n" << r.err;
  EXPECT_TRUE(!r.err.empty() && r.err.back() == '\n') << r.err;
  EXPECT_EQ(r.err.rfind("pgseed: error: ", 0), 0u) << r.err;
  EXPECT_NE(lower(r.err).find(lower(what)), std::string::npos)
      << "stderr does not mention '" << what << "': " << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.out.find(kSecret), std::string::npos);
  EXPECT_EQ(r.err.find(kSecret), std::string::npos) << "the password is in stderr: " << r.err;
}

// No slot in this database and no publication in it.
void expect_nothing_left(Db& db, int slots = 0, int publications = 0) {
  EXPECT_EQ(db.value("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"),
            std::to_string(slots));
  EXPECT_EQ(db.value("SELECT count(*) FROM pg_publication"), std::to_string(publications));
}

std::string with_secret(const std::string& conninfo) {
  return conninfo + " password=" + kSecret;
}

RunResult sync(const std::string& conninfo, const std::string& store,
               const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"sync", "--source", conninfo, "--store", store};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_pgseed(with_default_selection(args, store));
}

std::string store_path(const std::string& store) { return store.substr(store.find(':') + 1); }

// The bytes of a file, or of every file under a directory (name + contents), for "the
// store was left as it was".
std::string snapshot_of(const std::string& path) {
  auto read = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  if (!fs::is_directory(path)) return read(path);
  std::vector<fs::path> files;
  // RocksDB's own info log (LOG, LOG.old.*) records every open attempt; it holds no data.
  for (const auto& e : fs::recursive_directory_iterator(path))
    if (e.is_regular_file() && e.path().filename().string().rfind("LOG", 0) != 0)
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::string out;
  for (const auto& f : files) out += f.string() + "\n" + read(f) + "\n";
  return out;
}

// Compares two snapshot_of() results without printing megabytes of bytes.
void expect_same_bytes(const std::string& now, const std::string& before) {
  EXPECT_TRUE(now == before) << "the store's files changed (" << now.size() << " bytes, were "
                             << before.size() << ")";
}


std::string random_bytes(size_t n) {
  std::mt19937 rng(12345);
  std::string s(n, '\0');
  for (auto& c : s) c = char(rng() & 0xff);
  return s;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// A TCP port on 127.0.0.1 that nothing listens on.
int closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// A role of the cluster for one test, dropped at the end.
class TestRole {
 public:
  TestRole(const std::string& name, const std::string& attributes) : name_(name) {
    Db admin(server_conninfo());
    admin.exec("SET client_min_messages = warning; DROP ROLE IF EXISTS " + name_ + "; CREATE ROLE " + name_ + " " + attributes);
  }
  ~TestRole() {
    Db admin(server_conninfo());
    admin.try_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" +
                   name_ + "'");
    for (int i = 0; i < 50 && !admin.try_exec("DROP ROLE IF EXISTS " + name_).empty(); ++i)
      usleep(100000);
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

std::string role_name(const char* prefix) {
  return lower(std::string(prefix) + "_" + std::to_string(getpid()) + "_" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
}

}  // namespace

// --- The source -------------------------------------------------------------------------

TEST(SyncErrors, UnreachableServer) {
  std::string store = temp_store("sqlite");
  std::string port = std::to_string(closed_port());
  RunResult r = sync(with_secret("host=127.0.0.1 port=" + port + " user=postgres dbname=postgres"), store);
  expect_clean_failure(r, "cannot connect");
  EXPECT_EQ(r.exit_code, 3) << "connection: " << r.err;
  // The URI form, password inside.
  r = sync("postgresql://postgres:" + std::string(kSecret) + "@127.0.0.1:" + port + "/postgres", store);
  expect_clean_failure(r, "cannot connect");
  EXPECT_EQ(r.exit_code, 3) << "connection: " << r.err;
}

TEST(SyncErrors, NonexistentRole) {
  TestDatabase src;
  std::string store = temp_store("sqlite");
  RunResult r = sync(with_secret(src.conninfo() + " user=no_such_role_xyz"), store);
  expect_clean_failure(r, "no_such_role_xyz");
  EXPECT_EQ(r.exit_code, 4) << "authentication (SQLSTATE 28000): " << r.err;
  expect_nothing_left(src.db());
}

TEST(SyncErrors, NonexistentDatabase) {
  std::string store = temp_store("sqlite");
  RunResult r = sync(with_secret(server_conninfo() + " dbname=no_such_db_xyz"), store);
  expect_clean_failure(r, "no_such_db_xyz");
  EXPECT_EQ(r.exit_code, 5) << "configuration (SQLSTATE 3D000): " << r.err;
}

TEST(SyncErrors, RoleWithoutReplication) {
  TestDatabase src;
  src.db().exec("CREATE TABLE t (id int PRIMARY KEY)");
  TestRole role(role_name("norepl"), "LOGIN");
  std::string store = temp_store("sqlite");
  RunResult r = sync(with_secret(src.conninfo() + " user=" + role.name()), store);
  expect_clean_failure(r, "REPLICATION");
  expect_nothing_left(src.db());
}

TEST(SyncErrors, MissingPublication) {
  TestDatabase src;
  src.db().exec("CREATE TABLE t (id int PRIMARY KEY)");
  std::string store = temp_store("sqlite");
  RunResult r = sync(with_secret(src.conninfo()), store, {"--publication", "no_such_pub"});
  expect_clean_failure(r, "no_such_pub");
  expect_nothing_left(src.db());
}

TEST(SyncErrors, SlotNameTaken) {
  TestDatabase src;
  src.db().exec("CREATE TABLE t (id int PRIMARY KEY)");
  std::string slot = "taken_" + src.name();
  src.db().exec("SELECT pg_create_logical_replication_slot('" + slot + "', 'pgoutput')");
  std::string store = temp_store("sqlite");
  RunResult r = sync(with_secret(src.conninfo()), store, {"--slot", slot});
  expect_clean_failure(r, slot);
  expect_nothing_left(src.db(), /*slots=*/1);  // the existing slot, untouched
  EXPECT_EQ(src.db().value("SELECT slot_name FROM pg_replication_slots WHERE database = "
                           "current_database()"),
            slot);
}

TEST(SyncErrors, WalLevelNotLogical) {
  const char* scripts = std::getenv("PGSEED_SCRIPTS_DIR");
  ASSERT_TRUE(scripts) << "PGSEED_SCRIPTS_DIR not set (use scripts/test.sh)";
  std::string dir = "/tmp/pgseed-walrep-" + std::to_string(getpid());
  std::string pg = std::string(scripts) + "/pg.sh";
  struct Server {
    std::string pg, dir;
    ~Server() { std::system((pg + " stop " + dir + " >/dev/null 2>&1").c_str()); }
  } server{pg, dir};
  ASSERT_EQ(std::system(("PG_EXTRA_OPTS='-c wal_level=replica' " + pg + " start " + dir +
                         " >/dev/null 2>&1")
                            .c_str()),
            0);
  std::ifstream in(dir + "/conninfo");
  std::string conninfo;
  std::getline(in, conninfo);
  ASSERT_FALSE(conninfo.empty());
  Db db(conninfo);
  db.exec("CREATE TABLE t (id int PRIMARY KEY)");
  std::string store = temp_store("sqlite");
  RunResult r = sync(with_secret(conninfo), store);
  expect_clean_failure(r, "wal_level");
  expect_nothing_left(db);
}

// A failure after the slot and the publication were made (here: the copy cannot get a
// lock in time) must still leave neither behind.
TEST_P(StoreErrorTest, FailureDuringCopyLeavesNothing) {
  TestDatabase src;
  src.db().exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
  Db locker(src.conninfo());
  locker.exec("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE");
  std::string store = temp_store(store_kind());
  RunResult r = run_pgseed({"sync", "--quiet", "--source",
                            with_secret(src.conninfo() + " options='-c lock_timeout=300'"),
                            "--store", store, "--all-tables"});
  locker.exec("ROLLBACK");
  // --quiet: the progress lines ("created slot ...") of the run are not part of the error.
  expect_clean_failure(r, "lock timeout");
  expect_nothing_left(src.db());
}

// --- The store ----------------------------------------------------------------------------

TEST_P(StoreErrorTest, UnwritableStorePath) {
  TestDatabase src;
  src.db().exec("CREATE TABLE t (id int PRIMARY KEY)");
  // Tests run as root, so permissions do not stop them: a path under a regular file does.
  std::string store = store_kind() + ":/etc/passwd/x" + (store_kind() == "sqlite" ? ".db" : "");
  RunResult r = sync(with_secret(src.conninfo()), store);
  expect_clean_failure(r, "/etc/passwd/x");
  expect_nothing_left(src.db());
}

TEST(SyncErrors, UnknownStoreScheme) {
  TestDatabase src;
  RunResult r = sync(with_secret(src.conninfo()), "foo:/tmp/x");
  expect_clean_failure(r, "foo:");
  expect_nothing_left(src.db());
  EXPECT_FALSE(fs::exists("foo:/tmp/x"));
}

TEST_P(StoreErrorTest, NotAPgseedStore) {
  TestDatabase src;
  src.db().exec("CREATE TABLE t (id int PRIMARY KEY)");
  std::string store = temp_store(store_kind());
  std::string path = store_path(store);
  if (store_kind() == "sqlite") {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); "
                     "INSERT INTO users VALUES (1, 'ann')", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  } else {
    fs::create_directories(path);
    write_file(path + "/notes.txt", "not a database\n");
  }
  std::string before = snapshot_of(path);
  RunResult r = sync(with_secret(src.conninfo()), store);
  expect_clean_failure(r, "not a pgseed store");
  expect_same_bytes(snapshot_of(path), before);
  expect_nothing_left(src.db());
}

// A store of the other kind is not a store of this kind.
TEST_P(StoreErrorTest, StoreOfTheOtherKind) {
  TestDatabase src;
  src.db().exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
  std::string other_kind = store_kind() == "sqlite" ? "rocksdb" : "sqlite";
  std::string made = temp_store(other_kind);
  sync_ok(src, made);
  std::string path = store_path(made);
  std::string before = snapshot_of(path);
  RunResult r = sync(with_secret(src.conninfo()), store_kind() + ":" + path);
  expect_clean_failure(r, path);
  expect_same_bytes(snapshot_of(path), before);
  expect_nothing_left(src.db(), 1, 1);  // the first sync's slot and publication only
}

TEST_P(StoreErrorTest, CorruptStore) {
  TestDatabase src;
  src.db().exec("CREATE TABLE t (id int PRIMARY KEY, v text);"
                "INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 1000) i;");
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  std::string path = store_path(store);
  // Every byte of every file of the store replaced by random ones.
  if (store_kind() == "sqlite") {
    fs::remove(path + "-wal");
    fs::remove(path + "-shm");
    write_file(path, random_bytes(fs::file_size(path)));
  } else {
    for (const auto& e : fs::recursive_directory_iterator(path))
      if (e.is_regular_file() && e.file_size() > 0) write_file(e.path(), random_bytes(e.file_size()));
  }
  std::string before = snapshot_of(path);
  RunResult r = sync(with_secret(src.conninfo()), store);
  expect_clean_failure(r, path);
  expect_same_bytes(snapshot_of(path), before);
  expect_nothing_left(src.db(), 1, 1);  // the first sync's slot and publication only
  RunResult d = run_pgseed({"dump", "--store", store});
  expect_clean_failure(d, path);
}

// A SQLite store whose header is intact but whose pages are not.
TEST(SyncErrors, CorruptSqlitePages) {
  TestDatabase src;
  src.db().exec("CREATE TABLE t (id int PRIMARY KEY, v text);"
                "INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 1000) i;");
  std::string store = temp_store("sqlite");
  sync_ok(src, store);
  std::string path = store_path(store);
  fs::remove(path + "-wal");
  fs::remove(path + "-shm");
  std::string bytes = snapshot_of(path);
  std::string noise = random_bytes(bytes.size());
  for (size_t i = 100; i < bytes.size(); ++i) bytes[i] = noise[i];
  write_file(path, bytes);
  RunResult r = sync(with_secret(src.conninfo()), store);
  expect_clean_failure(r, path);
  expect_same_bytes(snapshot_of(path), bytes);
  expect_nothing_left(src.db(), 1, 1);
}

TEST_P(StoreErrorTest, StoreFromAnotherDatabase) {
  TestDatabase a, b;
  a.db().exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
  b.db().exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (2);");
  std::string store = temp_store(store_kind());
  sync_ok(a, store);
  RunResult before = run_pgseed({"dump", "--store", store});
  RunResult r = sync(with_secret(b.conninfo()), store);
  expect_clean_failure(r, a.name());
  expect_nothing_left(b.db());
  expect_nothing_left(a.db(), 1, 1);
  RunResult after = run_pgseed({"dump", "--store", store});
  EXPECT_EQ(after.out, before.out);
  EXPECT_EQ(after.exit_code, 0);
}

TEST(SyncErrors, DumpOfMissingStore) {
  RunResult r = run_pgseed({"dump", "--store", "/tmp/pgseed-no-such-store.db"});
  expect_clean_failure(r, "/tmp/pgseed-no-such-store.db");
  EXPECT_FALSE(fs::exists("/tmp/pgseed-no-such-store.db"));
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreErrorTest, ::testing::ValuesIn(test_support::kStoreKinds));

}  // namespace pgseed::test

namespace pgseed::test {
namespace {

// Every command that connects a store to a source checks the source's identity first: a
// store made from another database is refused (exit 7) and left as it was — verify in
// particular would otherwise take the other database's tables for tables added to the
// publication and copy them in.
class ForeignSourceTest : public StoreTest {};

TEST_P(ForeignSourceTest, EveryCommandRefusesAStoreOfAnotherDatabase) {
  TestDatabase a, b;
  a.db().exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a');"
              "CREATE PUBLICATION p FOR TABLE t;");
  b.db().exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (2, 'b');"
              "CREATE TABLE other (id int PRIMARY KEY); INSERT INTO other VALUES (3);"
              "CREATE PUBLICATION p FOR ALL TABLES;");
  std::string store = temp_store(store_kind());
  sync_ok(a, store, {"--publication", "p", "--slot", "s_" + a.name()});
  RunResult before = run_pgseed({"dump", "--store", store});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  std::string path = store.substr(store.find(':') + 1);
  auto file_bytes = [&] {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  std::string bytes = store_kind() == "sqlite" ? file_bytes() : "";

  for (const auto& args : std::vector<std::vector<std::string>>{
           {"verify", "--source", b.conninfo(), "--store", store},
           {"sync", "--source", b.conninfo(), "--store", store},
           {"resync", "--source", b.conninfo(), "--store", store, "--table", "t"},
           {"drop", "--source", b.conninfo(), "--store", store}}) {
    RunResult r = run_pgseed(args);
    EXPECT_EQ(r.exit_code, 7) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("was made from database"), std::string::npos) << args[0] << ": " << r.err;
  }
  RunResult st = run_pgseed({"status", "--source", b.conninfo(), "--store", store, "--format", "json"});
  EXPECT_NE(st.exit_code, 0);
  EXPECT_NE(st.out.find("was made from database"), std::string::npos) << st.out;

  RunResult after = run_pgseed({"dump", "--store", store});
  EXPECT_EQ(after.out, before.out);
  if (store_kind() == "sqlite") {
    EXPECT_TRUE(file_bytes() == bytes) << "the store file changed";
  }
  // And the store still works with its own source.
  sync_ok(a, store);
  RunResult v = run_pgseed({"verify", "--source", a.conninfo(), "--store", store});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

INSTANTIATE_TEST_SUITE_P(Stores, ForeignSourceTest, ::testing::ValuesIn(test_support::kStoreKinds),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace pgseed::test
