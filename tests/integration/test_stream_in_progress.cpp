// Streaming of transactions in progress (pgoutput protocol version 2, streaming 'on'): the
// walsender sends a transaction in segments once its decoded changes outgrow
// logical_decoding_work_mem; pgseed spools them (sync/stream_spool.h) and applies the
// transaction at its commit. The tests' source connections set logical_decoding_work_mem
// to its minimum, 64 kB (a user setting: for this walsender only), so that transactions
// of a few MB are streamed in dozens of segments. Each test also counts the segments the
// spool stored (the failpoint stream-segment-spooled): a test would fail if streaming
// were not negotiated.
#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

#include "store_kinds.h"
#include "stream_support.h"
#include "sync/failpoint.h"

namespace pgseed::test {

namespace {

// The source's conninfo with a walsender that streams a transaction once it holds 64 kB.
std::string streaming_source(TestDatabase& src) {
  return src.conninfo() + " options='-c logical_decoding_work_mem=64kB'";
}

// A one-shot Sync in this process; returns how many stream segments its spool stored.
long sync_counting_segments(const std::string& source, const std::string& store,
                            bool stream_in_progress = true) {
  SyncOptions o;
  o.source = source;
  o.store = store;
  o.stream_in_progress = stream_in_progress;
  std::atomic<long> segments{0};
  set_failpoint_handler([&](const char* name) {
    if (std::strcmp(name, "stream-segment-spooled") == 0) ++segments;
  });
  try {
    Sync(o).run();
  } catch (...) {
    set_failpoint_handler(nullptr);
    throw;
  }
  set_failpoint_handler(nullptr);
  return segments;
}

// A following Sync on a thread of its own that counts the stream segments it spooled.
class Follower {
 public:
  Follower(const std::string& source, const std::string& store) {
    SyncOptions o;
    o.source = source;
    o.store = store;
    o.follow = true;
    o.schema_check_interval_seconds = 0;
    set_failpoint_handler([this](const char* name) {
      if (std::strcmp(name, "stream-segment-spooled") == 0) ++segments_;
    });
    sync_ = std::make_unique<Sync>(o);
    runner_ = std::thread([this] {
      try {
        sync_->run();
      } catch (const std::exception& e) {
        ADD_FAILURE() << "the follower failed: " << e.what();
      }
    });
  }
  ~Follower() { stop(); }
  long segments() const { return segments_; }
  void stop() {
    if (!runner_.joinable()) return;
    sync_->stop();
    runner_.join();
    set_failpoint_handler(nullptr);
  }

 private:
  std::atomic<long> segments_{0};
  std::unique_ptr<Sync> sync_;
  std::thread runner_;
};

// The spool's directory (StreamSpool::dir_for): the store's path + ".stream-spool".
std::filesystem::path spool_dir(const std::string& store) {
  return store.substr(store.find(':') + 1) + ".stream-spool";
}

// A keyed table and a key-less one (REPLICA IDENTITY FULL, rows that repeat: a change
// applied twice or lost changes its row count).
constexpr const char* kSchema =
    "CREATE TABLE t (id int PRIMARY KEY, v text, n int);"
    "INSERT INTO t SELECT i, 'copied ' || i, i FROM generate_series(1, 1000) i;"
    "CREATE TABLE k (kind int, tag text);"
    "ALTER TABLE k REPLICA IDENTITY FULL;"
    "INSERT INTO k SELECT i % 5, 'copied' FROM generate_series(1, 100) i;";

void expect_equal(TestDatabase& src, const std::string& store) {
  expect_table_equal(src, store, "public.t");
  expect_table_equal(src, store, "public.k");
  RunResult r = run_pgseed({"dump", "--store", store, "--table", "public.k", "--format", "csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::to_string(sorted_csv_records(r.out).size()), src.db().value("SELECT count(*) FROM k"))
      << "the key-less table has another row count than the source: a change was applied twice or lost";
  EXPECT_FALSE(std::filesystem::exists(spool_dir(store))) << "the spool was left behind";
}

}  // namespace

class StreamInProgressTest : public StoreTest {};

// A transaction ~40 times logical_decoding_work_mem, of every kind of change, applied at
// its commit; the same with streaming switched off (protocol version 1): no segment.
TEST_P(StreamInProgressTest, LargeTransactionAppliedAtCommit) {
  TestDatabase src;
  src.db().exec(kSchema);
  std::string store = temp_store(store_kind());
  sync_ok(src, store);

  const char* big =
      "BEGIN;"
      "INSERT INTO t SELECT i, repeat('x', 50) || i, i FROM generate_series(1001, 41000) i;"
      "UPDATE t SET n = -n, v = v || 'u' WHERE id % 7 = 0;"
      "UPDATE t SET id = id + 100000 WHERE id % 13 = 0;"
      "DELETE FROM t WHERE id % 11 = 0;"
      "INSERT INTO k SELECT i % 5, 'big' FROM generate_series(1, 20000) i;"
      "UPDATE k SET tag = 'changed' WHERE ctid IN (SELECT ctid FROM k WHERE kind = 2 LIMIT 300);"
      "DELETE FROM k WHERE ctid IN (SELECT ctid FROM k WHERE kind = 1 LIMIT 500);"
      "COMMIT;";
  src.db().exec(big);
  src.db().exec("INSERT INTO t VALUES (-1, 'small, after it', 0);");
  long segments = sync_counting_segments(streaming_source(src), store);
  EXPECT_GT(segments, 10) << "the transaction was not streamed in segments (streaming not negotiated?)";
  expect_equal(src, store);

  src.db().exec("BEGIN; UPDATE t SET n = n + 1 WHERE id > 20000;"
                "INSERT INTO k SELECT 9, 'proto 1' FROM generate_series(1, 10000); COMMIT;");
  EXPECT_EQ(sync_counting_segments(streaming_source(src), store, /*stream_in_progress=*/false), 0);
  expect_equal(src, store);
}

// Subtransactions rolled back inside a streamed transaction (ROLLBACK TO SAVEPOINT, also of
// a savepoint with a nested one): their changes are absent, the rest is applied.
TEST_P(StreamInProgressTest, SavepointsRolledBack) {
  TestDatabase src;
  src.db().exec(kSchema);
  std::string store = temp_store(store_kind());
  sync_ok(src, store);

  src.db().exec(
      "BEGIN;"
      "INSERT INTO t SELECT i, 'top', 0 FROM generate_series(2001, 7000) i;"
      "SAVEPOINT a;"
      "INSERT INTO t SELECT i, 'in a, kept', 0 FROM generate_series(7001, 12000) i;"
      "SAVEPOINT b;"
      "INSERT INTO t SELECT i, 'in b, rolled back', 0 FROM generate_series(12001, 17000) i;"
      "UPDATE t SET v = 'updated in b, rolled back' WHERE id <= 500;"
      "INSERT INTO k SELECT 7, 'in b, rolled back' FROM generate_series(1, 3000);"
      "ROLLBACK TO SAVEPOINT b;"
      "INSERT INTO t SELECT i, 'after b, kept', 0 FROM generate_series(17001, 19000) i;"
      "RELEASE SAVEPOINT a;"
      "SAVEPOINT c;"
      "INSERT INTO t SELECT i, 'in c, rolled back', 0 FROM generate_series(20001, 25000) i;"
      "SAVEPOINT d;"
      "INSERT INTO t SELECT i, 'in d, rolled back', 0 FROM generate_series(25001, 30000) i;"
      "DELETE FROM t WHERE id BETWEEN 1 AND 400;"
      "INSERT INTO k SELECT 8, 'in d, rolled back' FROM generate_series(1, 3000);"
      "ROLLBACK TO SAVEPOINT c;"  // c and d, nested in it
      "INSERT INTO t SELECT i, 'in c again, kept', 0 FROM generate_series(30001, 31000) i;"
      "INSERT INTO k SELECT 6, 'kept' FROM generate_series(1, 2000);"
      "SAVEPOINT e;"
      "UPDATE t SET v = 'in e, released' WHERE id BETWEEN 600 AND 700;"
      "RELEASE SAVEPOINT e;"
      "COMMIT;");
  long segments = sync_counting_segments(streaming_source(src), store);
  EXPECT_GT(segments, 5);
  expect_equal(src, store);
  RunResult r = run_pgseed({"dump", "--store", store, "--table", "public.t", "--format", "csv"});
  EXPECT_EQ(r.out.find("rolled back"), std::string::npos);
}

// A streamed transaction that aborts while a following sync holds segments of it: nothing
// of it is applied; the transactions around it are. (It must abort while being streamed:
// PostgreSQL 17+ does not stream a transaction it already knows to be aborted.)
TEST_P(StreamInProgressTest, AbortedTransactionLeavesNothing) {
  TestDatabase src;
  src.db().exec(kSchema);
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  std::string slot = store_status(store).slot;

  Follower follower(streaming_source(src), store);
  src.db().exec("INSERT INTO t VALUES (-1, 'before', 0);");
  Db big(src.conninfo());
  big.exec("BEGIN;"
           "INSERT INTO t SELECT i, 'aborted', 0 FROM generate_series(2001, 32000) i;"
           "DELETE FROM t WHERE id <= 1000;"
           "INSERT INTO k SELECT 1, 'aborted' FROM generate_series(1, 10000);");
  EXPECT_TRUE(wait_until([&] { return follower.segments() >= 3; }, 120))
      << "the transaction in progress was not streamed";
  big.exec("ROLLBACK;");
  src.db().exec("INSERT INTO t VALUES (-2, 'after', 0);");
  EXPECT_TRUE(wait_confirmed(src.db(), slot, src.db().value("SELECT pg_current_wal_lsn()::text"), 120));
  follower.stop();
  expect_equal(src, store);
  EXPECT_EQ(src.db().value("SELECT count(*) FROM t"), "1002");
}

// Two large transactions written at once by two sessions, with small ordinary ones between
// them, committed in the opposite order of their start: the walsender interleaves their
// segments, and each is applied at its own commit.
TEST_P(StreamInProgressTest, InterleavedTransactions) {
  TestDatabase src;
  src.db().exec(kSchema);
  std::string store = temp_store(store_kind());
  sync_ok(src, store);

  Db a(src.conninfo()), b(src.conninfo());
  Db& small = src.db();
  a.exec("BEGIN; INSERT INTO t SELECT i, 'a1', 1 FROM generate_series(10001, 20000) i;");
  b.exec("BEGIN; INSERT INTO t SELECT i, 'b1', 2 FROM generate_series(50001, 60000) i;");
  small.exec("INSERT INTO t VALUES (-1, 'small 1', 0); UPDATE t SET n = 100 WHERE id = 5;");
  a.exec("INSERT INTO k SELECT 1, 'a' FROM generate_series(1, 5000);"
         "UPDATE t SET v = 'a2' WHERE id BETWEEN 10001 AND 15000;");
  b.exec("INSERT INTO k SELECT 2, 'b' FROM generate_series(1, 5000);"
         "DELETE FROM t WHERE id BETWEEN 55001 AND 56000;"
         "INSERT INTO t SELECT i, 'b2', 2 FROM generate_series(60001, 70000) i;");
  small.exec("INSERT INTO t VALUES (-2, 'small 2', 0); DELETE FROM t WHERE id = 6;");
  a.exec("INSERT INTO t SELECT i, 'a3', 1 FROM generate_series(20001, 30000) i;");
  b.exec("COMMIT;");  // started second, committed first
  small.exec("INSERT INTO t VALUES (-3, 'small 3', 0);");
  a.exec("COMMIT;");
  small.exec("INSERT INTO t VALUES (-4, 'small 4', 0);");

  long segments = sync_counting_segments(streaming_source(src), store);
  EXPECT_GT(segments, 10);
  expect_equal(src, store);
}

// DDL inside a streamed transaction: the Relation message with the new column comes inside
// the stream, before the first row of the new shape; the store follows it. A column added
// in a subtransaction that is rolled back is not in the store afterwards.
TEST_P(StreamInProgressTest, AddColumnInsideStreamedTransaction) {
  TestDatabase src;
  src.db().exec(kSchema);
  std::string store = temp_store(store_kind());
  sync_ok(src, store);

  src.db().exec(
      "BEGIN;"
      "INSERT INTO t SELECT i, 'before ddl', i FROM generate_series(2001, 22000) i;"
      "ALTER TABLE t ADD COLUMN extra text DEFAULT 'dflt';"
      "INSERT INTO t SELECT i, 'after ddl', i, 'x' || i FROM generate_series(22001, 42000) i;"
      "UPDATE t SET extra = NULL WHERE id % 10 = 0;"
      "ALTER TABLE k ADD COLUMN n int;"
      "INSERT INTO k SELECT 3, 'after ddl', i FROM generate_series(1, 5000) i;"
      // DDL in a subtransaction rolled back: the shape it described does not stay.
      "SAVEPOINT s;"
      "ALTER TABLE t ADD COLUMN gone int DEFAULT 7;"
      "INSERT INTO t SELECT i, 'rolled back', i, 'y', i FROM generate_series(50001, 55000) i;"
      "ROLLBACK TO SAVEPOINT s;"
      "INSERT INTO t SELECT i, 'after the rollback', i, 'z' FROM generate_series(60001, 65000) i;"
      "COMMIT;");
  long segments = sync_counting_segments(streaming_source(src), store);
  EXPECT_GT(segments, 5);
  expect_equal(src, store);

  src.db().exec("UPDATE t SET extra = 'later' WHERE id < 100; INSERT INTO k VALUES (4, 'later', 1);");
  sync_counting_segments(streaming_source(src), store);
  expect_equal(src, store);
}

// pgseed killed (kill -9) right after it spooled the third segment of a streamed
// transaction: the next run starts with an empty spool, the server sends the transaction
// again from its start, and it is applied once.
TEST_P(StreamInProgressTest, KilledMidStreamThenRestarted) {
  TestDatabase src;
  src.db().exec(kSchema);
  std::string store = temp_store(store_kind());
  sync_ok(src, store);

  src.db().exec("INSERT INTO k SELECT 0, 'small before' FROM generate_series(1, 10);");
  src.db().exec(
      "BEGIN;"
      "INSERT INTO t SELECT i, 'big', i FROM generate_series(2001, 32000) i;"
      "INSERT INTO k SELECT i % 3, 'big' FROM generate_series(1, 20000) i;"
      "UPDATE k SET tag = 'big, updated' WHERE kind = 1;"
      "COMMIT;");
  src.db().exec("INSERT INTO k SELECT 0, 'small after' FROM generate_series(1, 10);");

  setenv("PGSEED_FAILPOINT", "stream-segment-spooled@3", 1);
  RunResult killed = run_pgseed({"sync", "--source", streaming_source(src), "--store", store});
  unsetenv("PGSEED_FAILPOINT");
  ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
  EXPECT_TRUE(std::filesystem::exists(spool_dir(store))) << "killed mid-stream, the spool should be there";

  long segments = sync_counting_segments(streaming_source(src), store);
  EXPECT_GT(segments, 3) << "the transaction was not streamed again from its start";
  expect_equal(src, store);
}

// PostgreSQL crashes (immediate shutdown) while a following sync holds a streamed
// transaction in progress, right after it spooled the third segment (the sync waits in the
// failpoint until the crash is done); the server comes back, the follower reconnects, the
// server sends the transaction again from its start, and it is applied once. ("ServerCrash"
// in the name: ctest runs it alone, since it crashes the shared server.)
TEST_P(StreamInProgressTest, ServerCrashMidStream) {
  TestDatabase src;
  src.db().exec(kSchema);
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  std::string slot = store_status(store).slot;
  src.db().exec(
      "BEGIN;"
      "INSERT INTO t SELECT i, 'big', i FROM generate_series(2001, 32000) i;"
      "INSERT INTO k SELECT i % 3, 'big' FROM generate_series(1, 20000) i;"
      "COMMIT;");

  SyncOptions o;
  o.source = streaming_source(src);
  o.store = store;
  o.follow = true;
  o.schema_check_interval_seconds = 0;
  std::atomic<long> segments{0};
  std::atomic<bool> at_third{false}, crashed{false};
  set_failpoint_handler([&](const char* name) {
    if (std::strcmp(name, "stream-segment-spooled") != 0 || ++segments != 3) return;
    at_third = true;
    while (!crashed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  });
  Sync sync(o);
  std::exception_ptr failed;
  std::atomic<bool> ended{false};
  std::thread runner([&] {
    try {
      sync.run();
    } catch (...) {
      failed = std::current_exception();
    }
    ended = true;
  });
  bool reached = wait_until([&] { return at_third || ended; }, 120) && at_third;
  if (reached) {
    crash_server();
    restart_server();
  }
  crashed = true;
  PQreset(src.db().get());
  src.db().exec("SET TimeZone = UTC; SET DateStyle = ISO; SET IntervalStyle = postgres;"
                "SET extra_float_digits = 3; SET bytea_output = hex");
  src.db().exec("INSERT INTO k VALUES (0, 'after the crash');");
  std::string lsn = src.db().value("SELECT pg_current_wal_lsn()::text");
  bool caught_up = wait_confirmed(src.db(), slot, lsn, 120);
  sync.stop();
  runner.join();
  set_failpoint_handler(nullptr);
  ASSERT_TRUE(reached) << "the sync did not spool three segments";
  ASSERT_FALSE(failed) << "the follower gave up";
  EXPECT_TRUE(caught_up) << "the follower did not catch up after the crash";
  EXPECT_GT(segments.load(), 3) << "the transaction was not streamed again from its start";
  expect_equal(src, store);
}

INSTANTIATE_TEST_SUITE_P(Stores, StreamInProgressTest, ::testing::ValuesIn(test_support::kStoreKinds));

}  // namespace pgseed::test
