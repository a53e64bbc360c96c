// The SQLite store's bulk load (issue #6): the initial copy is built beside the store in
// PATH-pgseed-copy without a journal, then renamed over PATH. What must hold: during the
// copy the store file still reads phase `copying` (a kill -9 there is recovered from), the
// finished store is in WAL mode with nothing left beside it, and a store another process
// holds open in WAL mode is copied in place instead.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "harness.h"

namespace pgseed::test {

namespace {

std::string path_of(const std::string& store) { return store.substr(std::string("sqlite:").size()); }

// One value read from the SQLite file with a connection of its own.
std::string sqlite_value(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out = "<error>";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
      int rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) {
        const unsigned char* t = sqlite3_column_text(st, 0);
        out = t ? reinterpret_cast<const char*>(t) : "<null>";
      } else {
        out = rc == SQLITE_DONE ? "<none>" : std::string("<error: ") + sqlite3_errmsg(db) + ">";
      }
    } else {
      out = std::string("<error: ") + sqlite3_errmsg(db) + ">";
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

// `rows` rows in `big`: several batches, so that a failpoint at the first stored batch
// finds the copy in its middle.
void make_source(TestDatabase& src, int rows = 100000) {
  src.db().exec(
      "CREATE TABLE big (id bigint PRIMARY KEY, v text, n numeric);"
      "INSERT INTO big SELECT i, md5(i::text) || md5((i + 1)::text), i * 1.5 "
      "  FROM generate_series(1, " + std::to_string(rows) + ") i;"
      "CREATE TABLE pair (a int, b text, PRIMARY KEY (b, a));"
      "INSERT INTO pair SELECT i, 'b' || (i % 7) FROM generate_series(1, 5000) i;");
}

}  // namespace

// A kill -9 in the middle of the bulk load: the store file says `copying` and names the
// slot; the next run discards the half-built copy and its slot, and ends equal.
TEST(SqliteBulkLoad, KilledMidCopyLeavesAReadableCopyingStore) {
  TestDatabase src;
  make_source(src);
  std::string store = temp_store("sqlite");
  std::string path = path_of(store);
  // Killed (SIGKILL, by itself) right after the first batch of rows was stored.
  setenv("PGSEED_FAILPOINT", "copy-batch-stored", 1);
  int pid = spawn_pgseed(with_default_selection({"sync", "--source", src.conninfo(), "--store", store}, store), path + ".log");
  unsetenv("PGSEED_FAILPOINT");
  ASSERT_EQ(wait_pid(pid), 128 + SIGKILL);
  ASSERT_TRUE(std::filesystem::exists(path + "-pgseed-copy")) << "no bulk copy file";

  EXPECT_EQ(sqlite_value(path, "SELECT value FROM _pgseed_state WHERE key = 'phase'"), "copying");
  std::string slot = sqlite_value(path, "SELECT value FROM _pgseed_state WHERE key = 'slot'");
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot + "'"), "1");
  // The store file itself holds no copied table yet.
  EXPECT_EQ(sqlite_value(path, "SELECT count(*) FROM sqlite_master WHERE name = 'big'"), "0");

  src.db().exec("UPDATE big SET v = 'changed' WHERE id % 1000 = 0; DELETE FROM big WHERE id % 999 = 0;");
  sync_ok(src, store);
  EXPECT_FALSE(std::filesystem::exists(path + "-pgseed-copy"));
  EXPECT_EQ(sqlite_value(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(sqlite_value(path, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(sqlite_value(path, "SELECT value FROM _pgseed_state WHERE key = 'phase'"), "streaming");
  expect_table_equal(src, store, "public.big");
  expect_table_equal(src, store, "public.pair");
  // The killed run's slot was dropped and made again (same name): one slot, active in no one.
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"), "1");
  EXPECT_EQ(sqlite_value(path, "SELECT value FROM _pgseed_state WHERE key = 'slot'"), slot);
}

// While the copy is built aside, a reader sees the store file in rollback mode at phase
// `copying`; afterwards the file is the complete replica, in WAL mode, and streams on.
TEST(SqliteBulkLoad, ReadersSeeCopyingThenTheCompleteReplica) {
  TestDatabase src;
  make_source(src);
  std::string store = temp_store("sqlite");
  std::string path = path_of(store);
  // Stopped (SIGSTOP) right after the first batch of rows was stored aside.
  setenv("PGSEED_FAILPOINT", "stop:copy-batch-stored", 1);
  int pid = spawn_pgseed(with_default_selection({"sync", "--source", src.conninfo(), "--store", store}, store), path + ".log");
  unsetenv("PGSEED_FAILPOINT");
  ASSERT_TRUE(wait_stopped(pid)) << read_text(path + ".log");
  EXPECT_TRUE(std::filesystem::exists(path + "-pgseed-copy")) << "the copy is not built aside";
  RunResult status = run_pgseed({"status", "--store", store});
  EXPECT_EQ(sqlite_value(path, "SELECT value FROM _pgseed_state WHERE key = 'phase'"), "copying");
  EXPECT_EQ(sqlite_value(path, "PRAGMA journal_mode"), "delete");
  EXPECT_NE(status.out.find("copying"), std::string::npos) << status.out << status.err;
  kill(pid, SIGCONT);
  ASSERT_EQ(wait_pid(pid), 0);

  EXPECT_FALSE(std::filesystem::exists(path + "-pgseed-copy"));
  EXPECT_EQ(sqlite_value(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(sqlite_value(path, "PRAGMA integrity_check"), "ok");
  expect_table_equal(src, store, "public.big");
  src.db().exec("INSERT INTO big VALUES (1000001, 'new', 1); DELETE FROM pair WHERE a < 100;");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.big");
  expect_table_equal(src, store, "public.pair");
}

// A store file another process holds open in WAL mode cannot be replaced safely (that
// process could later checkpoint into, or delete, the new file's WAL): the copy is then
// written in place, and the result is the same.
TEST(SqliteBulkLoad, StoreHeldOpenInWalModeIsCopiedInPlace) {
  TestDatabase src;
  make_source(src);
  std::string store = temp_store("sqlite");
  std::string path = path_of(store);
  // An interrupted first run leaves the store file (phase `copying`).
  setenv("PGSEED_FAILPOINT", "copy-batch-stored", 1);
  int pid = spawn_pgseed(with_default_selection({"sync", "--source", src.conninfo(), "--store", store}, store), path + ".log");
  unsetenv("PGSEED_FAILPOINT");
  ASSERT_EQ(wait_pid(pid), 128 + SIGKILL);
  ASSERT_TRUE(std::filesystem::exists(path + "-pgseed-copy")) << "no bulk copy file";
  std::filesystem::remove(path + "-pgseed-copy");  // (the next run would remove it first)

  sqlite3* reader = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &reader), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(reader, "PRAGMA journal_mode=WAL; SELECT count(*) FROM _pgseed_state",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  int pid2 = spawn_pgseed(with_default_selection({"sync", "--source", src.conninfo(), "--store", store}, store), path + ".2.log");
  bool aside = false;
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (waitpid(pid2, &status, WNOHANG) == 0 && std::chrono::steady_clock::now() < deadline) {
    aside = aside || std::filesystem::exists(path + "-pgseed-copy");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "sync failed: status " << status;
  EXPECT_FALSE(aside) << "the copy was built aside although the store was open in WAL mode";
  sqlite3_close(reader);

  EXPECT_EQ(sqlite_value(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(sqlite_value(path, "PRAGMA integrity_check"), "ok");
  expect_table_equal(src, store, "public.big");
  expect_table_equal(src, store, "public.pair");
}

// A second sync on a store whose copy is running is refused before it touches anything
// (the running copy's slot is idle, so it must not be taken for an abandoned one).
TEST(SqliteBulkLoad, SecondSyncDuringTheCopyIsRefused) {
  TestDatabase src;
  make_source(src);
  std::string store = temp_store("sqlite");
  std::string path = path_of(store);
  setenv("PGSEED_FAILPOINT", "stop:copy-batch-stored", 1);
  int pid = spawn_pgseed(with_default_selection({"sync", "--source", src.conninfo(), "--store", store}, store), path + ".log");
  unsetenv("PGSEED_FAILPOINT");
  ASSERT_TRUE(wait_stopped(pid)) << read_text(path + ".log");
  RunResult second = run_pgseed(with_default_selection({"sync", "--source", src.conninfo(), "--store", store}, store));
  EXPECT_EQ(second.exit_code, 7) << second.err;
  EXPECT_NE(second.err.find("in use by another pgseed process"), std::string::npos) << second.err;
  kill(pid, SIGCONT);
  EXPECT_EQ(wait_pid(pid), 0) << "the first sync failed";
  expect_table_equal(src, store, "public.big");
}

}  // namespace pgseed::test
