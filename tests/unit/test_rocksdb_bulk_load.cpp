// RocksDbStore's initial copy as a bulk load on real RocksDB directories: rows in any order
// read back after the load, increasing rows land in the bottom level, a rollback inside the
// load fails it, a crash at each named step of the load (the child dies there), and the
// peak memory of a million-row load.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <random>
#include <string>
#include <vector>

#include "pgseed/error.h"
#include "store/rocksdb_store.h"
#include "model/value_codec.h"
#include "unit/store_test_support.h"

namespace pgseed {
namespace {

namespace fs = std::filesystem;
namespace rt = rocksdb_store_testing;

using namespace test_support;

std::unique_ptr<Store> open(const std::string& dir, bool must_exist = false) {
  return open_rocksdb_store(dir, must_exist);
}

// ---- the initial copy as a bulk load: rows in SST files, ingested at the end ----

struct BulkModel {
  std::map<int, Values> items;
  std::multiset<Values> bag;
};

Values bulk_item(int id) { return item(id, "bulk " + std::to_string(id)); }

// Enters kCopying durably (after a reset, as sync does), begins a bulk load, creates items
// and bag, and inserts rows in every order the copy may deliver them: increasing; two
// interleaved increasing streams (two sessions' inserts in the heap); four (parallel
// workers); descending and shuffled (no run fits once a table has 16, so most go
// through the sort buffer); and keyless rows, whose keys start with the column values. Commits in between,
// as the copy writer does.
void bulk_copy(Store& s, BulkModel& m) {
  StoreState st;
  st.phase = StoreState::Phase::kCopying;
  st.slot = "slot";
  s.begin();
  s.reset();
  s.write_state(st);
  s.commit();
  s.begin_bulk_load();
  TableDef items = items_def(), bag = bag_def();
  s.begin();
  s.create_table(items);
  s.create_table(bag);
  s.commit();
  auto add = [&](const std::vector<int>& ids) {
    std::vector<Values> rows;
    for (int id : ids) {
      m.items[id] = bulk_item(id);
      rows.push_back(m.items[id]);
    }
    insert(s, items, rows);
  };
  auto range = [](int from, int n) {
    std::vector<int> v;
    for (int i = 0; i < n; ++i) v.push_back(from + i);
    return v;
  };
  s.begin();
  for (int b = 0; b < 6; ++b) add(range(1 + 500 * b, 500));
  for (int b = 0; b < 12; ++b) {
    add(range(10001 + 250 * b, 250));
    add(range(20001 + 250 * b, 250));
  }
  s.commit();
  s.begin();
  for (int b = 0; b < 10; ++b)
    for (int w = 0; w < 4; ++w) add(range(30001 + 10000 * w + 200 * b, 200));
  for (int b = 0; b < 40; ++b) {
    std::vector<int> ids;
    for (int i = 0; i < 100; ++i) ids.push_back(79999 - 100 * b - i);
    add(ids);
  }
  {
    std::vector<int> ids;
    for (int i = 0; i < 4000; ++i) ids.push_back(90000 + i);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(42));
    for (size_t b = 0; b < ids.size(); b += 500)
      add(std::vector<int>(ids.begin() + static_cast<std::ptrdiff_t>(b),
                           ids.begin() + static_cast<std::ptrdiff_t>(b + 500)));
  }
  std::vector<Values> bag_rows;
  for (int i = 0; i < 3000; ++i) {
    Values v{std::to_string((i * 7919) % 1000), "b" + std::to_string(i % 1500)};
    m.bag.insert(v);
    bag_rows.push_back(v);
  }
  insert(s, bag, bag_rows);
  s.commit();
}

void expect_bulk_contents(const Store& s, const BulkModel& m) {
  auto tables = s.tables();
  ASSERT_EQ(tables.size(), 2u);
  std::vector<Values> items;
  for (const auto& [id, v] : m.items) items.push_back(v);
  EXPECT_EQ(scan(s, find_table(tables, "items")), items);
  EXPECT_EQ(s.count(find_table(tables, "items")), m.items.size());
  std::vector<Values> bag_rows = scan(s, find_table(tables, "bag"));
  EXPECT_EQ(std::multiset<Values>(bag_rows.begin(), bag_rows.end()), m.bag);
}

// Keys in the table ranges (ids 1 .. FFFFFFFE) of the directory, as RocksDB sees them.
size_t table_range_keys(const std::string& dir) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status st = rocksdb::DB::Open(rocksdb::Options(), dir, &raw);
  EXPECT_TRUE(st.ok()) << st.ToString();
  if (!st.ok()) return SIZE_MAX;
  std::unique_ptr<rocksdb::DB> db(raw);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  size_t n = 0;
  for (it->Seek(std::string("\0\0\0\1", 4)); it->Valid() && it->key()[0] != '\xFF'; it->Next())
    ++n;
  return n;
}

class BulkLoadTest : public ::testing::Test {
 protected:
  // Small files and sort buffer: many files, several ingestion rounds.
  void SetUp() override { rt::set_bulk_bytes(64u << 10, 32u << 10, 4u << 10); }
  void TearDown() override {
    rt::set_bulk_bytes(0, 0);
    rt::set_crash_point("");
  }
};

TEST_F(BulkLoadTest, RowsInAnyOrderReadBackAfterFinish) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  BulkModel m;
  const uint64_t ingested_before = rt::bulk_files_ingested();
  const uint64_t sorted_before = rt::bulk_rows_sorted();
  {
    auto s = open(dir);
    bulk_copy(*s, m);
    EXPECT_TRUE(fs::exists(dir + "/pgseed-bulk"));
    s->finish_bulk_load(streaming_at(0x100));
    EXPECT_GT(rt::bulk_files_ingested() - ingested_before, 10u);
    EXPECT_GT(rt::bulk_rows_sorted() - sorted_before, 1000u);  // the sort buffer was used
    EXPECT_FALSE(fs::exists(dir + "/pgseed-bulk"));
    EXPECT_EQ(s->state().phase, StoreState::Phase::kStreaming);
    EXPECT_EQ(s->state().applied_lsn, Lsn(0x100));
    expect_bulk_contents(*s, m);

    // Later changes to bulk-loaded rows win over them, whatever level their file went to.
    auto tables = s->tables();
    const TableDef& items = find_table(tables, "items");
    const TableDef& bag = find_table(tables, "bag");
    s->begin();
    for (int id : {1, 2999, 10001, 23000, 30001, 69800, 70000, 79999}) {
      m.items[id] = item(id, "changed");
      s->upsert(items, datums(m.items[id]));
    }
    for (int id : {5, 20001, 45000, 75000}) {
      m.items.erase(id);
      s->remove(items, datums(bulk_item(id)));
    }
    const Values gone{"0", "b0"};
    m.bag.erase(m.bag.find(gone));
    s->remove(bag, datums(gone));
    s->write_state(streaming_at(0x200));
    s->commit();
    expect_bulk_contents(*s, m);
  }
  auto s = open(dir, true);
  EXPECT_EQ(s->state().applied_lsn, Lsn(0x200));
  expect_bulk_contents(*s, m);
}

// Increasing keys: every file goes to the bottom level (the reset's range tombstone was
// compacted away first), so nothing is compacted afterwards.
TEST_F(BulkLoadTest, IncreasingRowsGoToTheBottomLevel) {
  rt::set_bulk_bytes(8u << 10, 0);
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  const uint64_t ingested_before = rt::bulk_files_ingested();
  {
    auto s = open(dir);
    StoreState st;
    st.phase = StoreState::Phase::kCopying;
    s->begin();
    s->reset();
    s->write_state(st);
    s->commit();
    s->begin_bulk_load();
    TableDef items = items_def();
    s->begin();
    s->create_table(items);
    for (int b = 0; b < 20; ++b) {
      std::vector<Values> rows;
      for (int i = 0; i < 500; ++i) rows.push_back(bulk_item(b * 500 + i));
      insert(*s, items, rows);
    }
    s->commit();
    s->finish_bulk_load(streaming_at(0x100));
    EXPECT_EQ(s->count(s->tables()[0]), 10000u);
  }
  const uint64_t ingested = rt::bulk_files_ingested() - ingested_before;
  EXPECT_GT(ingested, 3u);
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string l6;
  ASSERT_TRUE(db->GetProperty("rocksdb.num-files-at-level6", &l6));
  EXPECT_GE(std::stoull(l6), ingested);
}

TEST_F(BulkLoadTest, RollbackInsideTheBulkLoadFailsItAndAbortKeepsCopying) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  auto s = open(dir);
  BulkModel m;
  bulk_copy(*s, m);
  const TableDef items = find_table(s->tables(), "items");
  // Only create_table and insert_batch write during a bulk load.
  s->begin();
  EXPECT_THROW(s->upsert(items, datums(bulk_item(1))), Error);
  EXPECT_THROW(s->write_state(streaming_at(0x100)), Error);
  insert(*s, items, {bulk_item(90000)});
  s->rollback();
  EXPECT_THROW(s->finish_bulk_load(streaming_at(0x100)), Error);
  s->abort_bulk_load();
  EXPECT_FALSE(fs::exists(dir + "/pgseed-bulk"));
  EXPECT_EQ(s->state().phase, StoreState::Phase::kCopying);
  s->begin();
  s->reset();
  s->commit();
  EXPECT_TRUE(s->tables().empty());
  // A new bulk load after the abort works.
  BulkModel m2;
  bulk_copy(*s, m2);
  s->finish_bulk_load(streaming_at(0x100));
  expect_bulk_contents(*s, m2);
}

// ---- crash during a bulk load: the child dies at a named point ----

[[noreturn]] void bulk_then_die(const std::string& dir, const char* point, int nth) {
  rt::set_bulk_bytes(64u << 10, 32u << 10, 4u << 10);
  auto s = open(dir);
  rt::set_crash_point(point, nth);
  BulkModel m;
  bulk_copy(*s, m);
  s->finish_bulk_load(streaming_at(0x100));
  [[maybe_unused]] Store* leaked = s.release();  // the process dies with the DB open
  _exit(0);
}

// A crash anywhere before the final state write leaves kCopying and no scratch files; the
// next run (reset, bulk load again) ends with exactly the copied rows.
void bulk_crash_test(const char* env, const char* point, int nth) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::optional<TempDir> tmp;
  std::string dir = crash_dir(env, tmp);
  EXPECT_EXIT(bulk_then_die(dir, point, nth), ::testing::ExitedWithCode(rt::kCrashExitCode), "");
  unsetenv(env);
  BulkModel m;
  {
    auto s = open(dir, true);
    EXPECT_EQ(s->state().phase, StoreState::Phase::kCopying) << point;
    EXPECT_FALSE(fs::exists(dir + "/pgseed-bulk")) << point;
    rt::set_bulk_bytes(64u << 10, 32u << 10, 4u << 10);
    bulk_copy(*s, m);
    s->finish_bulk_load(streaming_at(0x100));
    rt::set_bulk_bytes(0, 0);
    expect_bulk_contents(*s, m);
  }
  // Nothing of the crashed run is left under any table id.
  EXPECT_EQ(table_range_keys(dir), m.items.size() + m.bag.size()) << point;
}

TEST(RocksDbStoreCrash, KillAtBulkBeginKeepsCopying) {
  bulk_crash_test("PGSEED_TEST_CRASH_DIR_BULK_BEGIN", "bulk_begin", 1);
}

TEST(RocksDbStoreCrash, KillAfterABulkFileKeepsCopying) {
  bulk_crash_test("PGSEED_TEST_CRASH_DIR_BULK_FILE", "bulk_file", 3);
}

TEST(RocksDbStoreCrash, KillAfterTheFirstIngestionKeepsCopying) {
  bulk_crash_test("PGSEED_TEST_CRASH_DIR_BULK_INGEST1", "bulk_ingest", 1);
}

TEST(RocksDbStoreCrash, KillAfterTheSecondIngestionKeepsCopying) {
  bulk_crash_test("PGSEED_TEST_CRASH_DIR_BULK_INGEST2", "bulk_ingest", 2);
}

TEST(RocksDbStoreCrash, KillBeforeTheFinalStateWriteKeepsCopying) {
  bulk_crash_test("PGSEED_TEST_CRASH_DIR_BULK_FLUSHED", "bulk_flushed", 1);
}

// Finished, then killed: every row is there with the final state.
TEST(RocksDbStoreCrash, KillAfterFinishBulkLoadKeepsEveryRow) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::optional<TempDir> tmp;
  std::string dir = crash_dir("PGSEED_TEST_CRASH_DIR_BULK_DONE", tmp);
  EXPECT_EXIT(bulk_then_die(dir, "", 1), ::testing::ExitedWithCode(0), "");
  unsetenv("PGSEED_TEST_CRASH_DIR_BULK_DONE");
  BulkModel m;
  {
    TempDir scratch;
    auto s = open(scratch.sub("model"));
    bulk_copy(*s, m);
    s->finish_bulk_load(streaming_at(0x100));
  }
  auto s = open(dir, true);
  EXPECT_EQ(s->state().phase, StoreState::Phase::kStreaming);
  expect_bulk_contents(*s, m);
}

// A 1M-row bulk load (four interleaved streams, as parallel workers send them) stays
// under the memory bound.
[[noreturn]] void million_row_bulk_load(const std::string& dir) {
  auto s = open(dir);
  TableDef t;
  t.schema = "public";
  t.name = "events";
  t.columns = {col("id", kInt8Oid, 1), col("payload", 25)};
  StoreState st;
  st.phase = StoreState::Phase::kCopying;
  s->begin();
  s->write_state(st);
  s->commit();
  s->begin_bulk_load();
  s->begin();
  s->create_table(t);
  s->commit();
  const std::string payload(300, 'x');
  s->begin();
  for (int b = 0; b < 250; ++b) {
    for (int w = 0; w < 4; ++w) {
      RowBatch batch;
      for (int i = 0; i < 1000; ++i) {
        batch.add_text(std::to_string(1 + w * 250000 + b * 1000 + i));
        batch.add_text(payload);
        batch.end_row();
      }
      s->insert_batch(t, batch);
    }
  }
  s->commit();
  s->finish_bulk_load(streaming_at(0x100));
  const uint64_t n = s->count(t);
  s.reset();
  exit_reporting_peak_rss(dir, n);
}

TEST(RocksDbStoreMemory, MillionRowBulkLoadStaysUnder100MB) {
  expect_million_rows_within_memory("PGSEED_TEST_MEMORY_BULK_DIR", "1M-row bulk load", million_row_bulk_load);
}

}  // namespace
}  // namespace pgseed
