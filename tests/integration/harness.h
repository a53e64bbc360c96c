// Test harness for integration tests: a real PostgreSQL (PGSEED_TEST_CONNINFO, started by
// scripts/test.sh), a fresh database per test, and the real pgseed binary.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <exception>
#include <string>
#include <vector>

#include "pgseed/sync.h"

namespace pgseed::test {

// The server's superuser conninfo; fails the test (never skips) when unset.
std::string server_conninfo();

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// A file's whole text ("" when it cannot be read), and its first line.
std::string read_text(const std::string& path);
std::string first_line_of(const std::string& path);

// Runs build/pgseed with `args` (no shell), waits, captures stdout and stderr.
RunResult run_pgseed(const std::vector<std::string>& args);

// Starts pgseed in the background (stdout/stderr to files); returns its pid.
int spawn_pgseed(const std::vector<std::string>& args, const std::string& log_path);
// Waits for pid; returns its exit code (or 128+signal).
int wait_pid(int pid);
// Waits until the child `pid` is stopped (by a PGSEED_FAILPOINT=stop:... failpoint): true;
// false when it ended instead (it is then reaped). SIGCONT lets it go on.
bool wait_stopped(int pid);

// Peak RSS of the last finished child waited for by run_pgseed/wait_pid, in kB.
long last_child_peak_rss_kb();

// A connection to a database, with pgseed's fixed session settings.
class Db {
 public:
  explicit Db(const std::string& conninfo);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs SQL (several statements allowed); fails the test on error.
  void exec(const std::string& sql);
  // Runs SQL; returns the error message ("" when it succeeded).
  std::string try_exec(const std::string& sql);
  // First column of the first row ("" when no row).
  std::string value(const std::string& sql);
  // `COPY (query) TO STDOUT (FORMAT csv)` as a sorted list of CSV records.
  std::vector<std::string> csv_records(const std::string& query);
  PGconn* get() { return conn_; }

 private:
  PGconn* conn_;
};

// A database of its own for one test: created on construction, dropped (with any slots
// in it) on destruction.
class TestDatabase {
 public:
  TestDatabase() : TestDatabase(server_conninfo()) {}
  // On another server than the test server (its superuser conninfo).
  explicit TestDatabase(std::string server);
  ~TestDatabase();
  const std::string& name() const { return name_; }
  const std::string& conninfo() const { return conninfo_; }
  Db& db() { return *db_; }

 private:
  std::string server_;
  std::string name_;
  std::string conninfo_;
  std::unique_ptr<Db> db_;
};

// Splits CSV text into records (newlines inside quotes do not split) and sorts them.
std::vector<std::string> sorted_csv_records(const std::string& csv);

// This test process's directory for its stores and logs (/tmp/pgseed-it-<pid>), removed
// after its last test if every test passed (PGSEED_KEEP_TEST_FILES=1 keeps it).
std::string test_dir();
// A fresh store location of the given kind ("sqlite" or "rocksdb") in test_dir().
std::string temp_store(const std::string& kind);

// Expects `pgseed dump --table T --format csv` to equal the source's COPY csv of T (as
// multisets of records). `columns` is the SELECT list (default: *).
void expect_table_equal(TestDatabase& src, const std::string& store, const std::string& table,
                        const std::string& columns = "*");

// Expects `pgseed dump --table T --format csv` to equal the COPY csv of `query` on the
// source (multisets of records): for column lists, row filters, ONLY.
// Two sorted lists of CSV records are equal; if not, says which records only one side has.
void expect_records_equal(const std::vector<std::string>& got, const std::vector<std::string>& want,
                          const std::string& table);
void expect_dump_equals(TestDatabase& src, const std::string& store, const std::string& table,
                        const std::string& query);

// `args` of a `pgseed sync` plus --all-tables when they name neither tables nor a
// publication and the store has none yet (a first sync needs one of the three).
std::vector<std::string> with_default_selection(std::vector<std::string> args, const std::string& store);

// Runs `pgseed sync` one-shot and expects success (a first run without --tables or
// --publication: with --all-tables).
void sync_ok(TestDatabase& src, const std::string& store, const std::vector<std::string>& extra = {});

// Runs a Sync with `options` on a thread of its own and calls stop() on the copy's thread
// right after the copy stored its first batch of rows (the failpoint copy-batch-stored),
// then waits for run() to return.
struct StoppedCopy {
  bool stopped_mid_copy = false;  // the copy stored a batch (and was stopped there)
  double seconds = 0;             // from stop() until run() returned
  std::exception_ptr error;       // what run() threw
};
StoppedCopy stop_mid_copy(SyncOptions options);

// scripts/pg.sh crash / restart of the test server.
void crash_server();
void restart_server();

// Parametrised over both stores.
class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string store_kind() const { return GetParam(); }
};

}  // namespace pgseed::test
