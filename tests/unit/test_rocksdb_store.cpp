// RocksDbStore on real RocksDB directories in a temporary folder, beyond the conformance
// suite (test_store_conformance.cpp): open errors, a crash (process exit without close) during
// and after the initial copy, and large transactions: spilled to disk, rolled back,
// interrupted by a crash at each step of their commit, and their peak memory.
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
#include "store/rocksdb_reader.h"
#include "store/rocksdb_store.h"
#include "model/value_codec.h"
#include "unit/store_test_support.h"

namespace pgseed {
namespace {

namespace fs = std::filesystem;

using namespace test_support;

std::unique_ptr<Store> open(const std::string& dir, bool must_exist = false) {
  return open_rocksdb_store(dir, must_exist);
}

std::string open_error(const std::string& dir, bool must_exist = false) {
  try {
    open(dir, must_exist);
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::kStore);
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  ADD_FAILURE() << "opening " << dir << " succeeded";
  return {};
}

TEST(RocksDbStore, OpenErrors) {
  TempDir tmp;
  EXPECT_NE(open_error(tmp.sub("missing"), true).find("does not exist"), std::string::npos);
  EXPECT_FALSE(fs::exists(tmp.sub("missing")));

  std::ofstream(tmp.sub("file")) << "not a directory";
  EXPECT_NE(open_error(tmp.sub("file")).find("not a directory"), std::string::npos);

  fs::create_directory(tmp.sub("other"));
  std::ofstream(tmp.sub("other") + "/notes.txt") << "x";
  EXPECT_NE(open_error(tmp.sub("other")).find("not a pgseed store"), std::string::npos);

  // What RocksDB writes before CURRENT while creating a database (a run killed then):
  // not a foreign directory; the next open creates the store over it.
  fs::create_directory(tmp.sub("interrupted"));
  for (const char* f : {"LOCK", "LOG", "IDENTITY", "MANIFEST-000001"})
    std::ofstream(tmp.sub("interrupted") + "/" + f) << "";
  EXPECT_NE(open_error(tmp.sub("interrupted"), true).find("does not exist"), std::string::npos);
  EXPECT_NO_THROW(open(tmp.sub("interrupted")));

  // A RocksDB database with data but no pgseed format key.
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, tmp.sub("foreign"), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "k", "v").ok());
  }
  EXPECT_NE(open_error(tmp.sub("foreign")).find("not a pgseed store"), std::string::npos);

  // Another format version.
  { auto s = open(tmp.sub("v2")); }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), tmp.sub("v2"), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), std::string("\0\0\0\0format_version", 18), "2").ok());
  }
  EXPECT_NE(open_error(tmp.sub("v2")).find("format version"), std::string::npos);

  // Locked: a second open of a store that is open.
  auto s = open(tmp.sub("locked"));
  EXPECT_NE(open_error(tmp.sub("locked")).find("in use"), std::string::npos);

  // Corrupt: CURRENT names no manifest.
  { auto c = open(tmp.sub("corrupt")); }
  std::ofstream(tmp.sub("corrupt") + "/CURRENT", std::ios::trunc) << "garbage\n";
  std::string msg = open_error(tmp.sub("corrupt"));
  EXPECT_NE(msg.find("rocksdb store"), std::string::npos) << msg;

  // An empty directory is a new store; with must_exist it is missing.
  fs::create_directory(tmp.sub("empty"));
  EXPECT_NE(open_error(tmp.sub("empty"), true).find("does not exist"), std::string::npos);
  EXPECT_EQ(open(tmp.sub("empty"))->state().phase, StoreState::Phase::kEmpty);
}

// ---- crash during the initial copy: a child process writes and exits without closing ----

constexpr int kCopyRows = 2000;

// Enters kCopying durably, copies kCopyRows rows in copy batches, optionally commits
// kStreaming, then exits at once: no destructor, no flush at close (as after kill -9).
[[noreturn]] void copy_then_die(const std::string& dir, bool finish) {
  auto s = open(dir);
  TableDef items = items_def();
  StoreState st;
  st.phase = StoreState::Phase::kCopying;
  st.slot = "slot";
  s->begin();
  s->create_table(items);
  s->write_state(st);
  s->commit();
  for (int b = 0; b < 4; ++b) {
    std::vector<Values> rows;
    for (int i = 0; i < kCopyRows / 4; ++i)
      rows.push_back({std::to_string(b * 100000 + i), "row", N, N, N, N});
    s->begin();
    insert(*s, items, rows);
    s->commit();
  }
  if (finish) {
    st.phase = StoreState::Phase::kStreaming;
    st.applied_lsn = Lsn(0x100);
    s->begin();
    s->write_state(st);
    s->commit();
  }
  [[maybe_unused]] Store* leaked = s.release();  // the process dies with the DB open
  _exit(0);
}

TEST(RocksDbStoreCrash, KillDuringCopyIsSeenAsIncomplete) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::optional<TempDir> tmp;
  std::string dir = crash_dir("PGSEED_TEST_CRASH_DIR_COPY", tmp);
  EXPECT_EXIT(copy_then_die(dir, false), ::testing::ExitedWithCode(0), "");
  unsetenv("PGSEED_TEST_CRASH_DIR_COPY");
  auto s = open(dir, true);
  EXPECT_EQ(s->state().phase, StoreState::Phase::kCopying);
  ASSERT_EQ(s->tables().size(), 1u);
  EXPECT_LE(s->count(s->tables()[0]), static_cast<uint64_t>(kCopyRows));
  // Starting over works.
  s->begin();
  s->reset();
  s->commit();
  EXPECT_EQ(s->state().phase, StoreState::Phase::kEmpty);
  EXPECT_TRUE(s->tables().empty());
}

TEST(RocksDbStoreCrash, KillAfterCopyKeepsEveryRow) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::optional<TempDir> tmp;
  std::string dir = crash_dir("PGSEED_TEST_CRASH_DIR_DONE", tmp);
  EXPECT_EXIT(copy_then_die(dir, true), ::testing::ExitedWithCode(0), "");
  unsetenv("PGSEED_TEST_CRASH_DIR_DONE");
  auto s = open(dir, true);
  EXPECT_EQ(s->state().phase, StoreState::Phase::kStreaming);
  EXPECT_EQ(s->state().applied_lsn, Lsn(0x100));
  ASSERT_EQ(s->tables().size(), 1u);
  EXPECT_EQ(s->count(s->tables()[0]), static_cast<uint64_t>(kCopyRows));
}

// ---- large transactions: spilled to the overlay range, committed, merged ----

namespace rt = rocksdb_store_testing;

constexpr size_t kSmallSpill = 64u << 10;  // spill often: many spills, merge chunks

// The store's contents as the tests expect them.
struct Model {
  std::map<int, Values> items;  // by id
  std::multiset<Values> bag;    // keyless: equal rows counted
  std::map<int, Values> logs;
};

TableDef logs_def() {
  TableDef d = items_def();
  d.source_oid = 16600;
  d.name = "logs";
  return d;
}

std::string padded(const std::string& s) { return s + std::string(40, '.'); }

void expect_contents(const StoreReader& s, const Model& m) {
  auto tables = s.tables();
  ASSERT_EQ(tables.size(), 3u);
  std::vector<Values> items, logs;
  for (const auto& [id, v] : m.items) items.push_back(v);
  for (const auto& [id, v] : m.logs) logs.push_back(v);
  EXPECT_EQ(scan(s, find_table(tables, "items")), items);
  EXPECT_EQ(scan(s, find_table(tables, "logs")), logs);
  std::vector<Values> bag_rows = scan(s, find_table(tables, "bag"));
  EXPECT_EQ(std::multiset<Values>(bag_rows.begin(), bag_rows.end()), m.bag);
  EXPECT_EQ(s.count(find_table(tables, "items")), m.items.size());
}

// Committed at LSN 0x100: three tables with some rows.
void make_base(Store& s, Model& m) {
  TableDef items = items_def(), bag = bag_def(), logs = logs_def();
  s.begin();
  s.create_table(items);
  s.create_table(bag);
  s.create_table(logs);
  for (int i = 1; i <= 500; ++i) {
    m.items[i] = item(i, "base " + std::to_string(i));
    s.upsert(items, datums(m.items[i]));
  }
  for (const Values& v : {Values{"1", "x"}, Values{"1", "x"}, Values{"2", "y"}}) {
    m.bag.insert(v);
    s.upsert(bag, datums(v));
  }
  for (int i = 1; i <= 300; ++i) {
    m.logs[i] = item(i, "log " + std::to_string(i));
    s.upsert(logs, datums(m.logs[i]));
  }
  s.write_state(streaming_at(0x100));
  s.commit();
}

// One transaction (LSN 0x200) big enough to spill many times with kSmallSpill, applying
// every kind of change to rows in memory, spilled, and committed before; `m` follows it.
// Committed when `commit`, else left open.
void big_txn(Store& s, Model& m, bool commit = true) {
  auto tables = s.tables();
  const TableDef& items = find_table(tables, "items");
  const TableDef& bag = find_table(tables, "bag");
  const TableDef& logs = find_table(tables, "logs");
  auto upsert_items = [&](int from, int to) {
    for (int i = from; i <= to; ++i) {
      m.items[i] = item(i, padded("big " + std::to_string(i)));
      s.upsert(items, datums(m.items[i]));
    }
  };
  auto bag_insert = [&](const Values& v) {
    m.bag.insert(v);
    s.upsert(bag, datums(v));
  };
  auto bag_remove = [&](const Values& v) {
    if (auto it = m.bag.find(v); it != m.bag.end()) m.bag.erase(it);
    s.remove(bag, datums(v));
  };

  s.begin();
  upsert_items(1001, 9000);
  for (int k = 0; k < 3; ++k) bag_insert({"1", "x"});
  upsert_items(9001, 12000);  // the three are spilled by now
  for (int k = 0; k < 2; ++k) bag_insert({"1", "x"});

  // Updates keeping an unchanged (TOAST) value: of spilled rows and of committed rows.
  for (int i : {1001, 1002, 1050, 1100, 5000, 11999, 1, 2, 50}) {
    OwnedRow upd(item(i, "ignored", "7.5"));
    upd.row[1] = Datum::unchanged();
    s.update(items, {}, upd.row);
    m.items[i][2] = "7.5";
  }
  // Key change of a spilled row, keeping its name.
  {
    OwnedRow old_key({"1200", N, N, N, N, N});
    OwnedRow moved(item(20000, "ignored", "1"));
    moved.row[1] = Datum::unchanged();
    s.update(items, old_key.row, moved.row);
    m.items[20000] = item(20000, m.items[1200][1].value(), "1");
    m.items.erase(1200);
  }
  // Deletes of spilled and of committed rows.
  for (int i = 2001; i <= 2500; ++i) {
    s.remove(items, datums({std::to_string(i), N, N, N, N, N}));
    m.items.erase(i);
  }
  for (int i = 51; i <= 100; ++i) {
    s.remove(items, datums({std::to_string(i), N, N, N, N, N}));
    m.items.erase(i);
  }
  // Reads inside the transaction see all of it.
  bool found = s.lookup(items, std::vector<std::string>{"1050"}, [&](const Row& row) {
    EXPECT_EQ(row[1].text, padded("big 1050"));
    EXPECT_EQ(row[2].text, "7.5");
  });
  EXPECT_TRUE(found);
  EXPECT_FALSE(s.lookup(items, std::vector<std::string>{"2100"}, [](const Row&) {}));
  EXPECT_EQ(s.count(items), m.items.size());

  // Keyless: duplicates committed, spilled and in memory; remove all but one.
  for (int k = 0; k < 6; ++k) bag_remove({"1", "x"});
  bag_remove({"2", "y"});
  bag_remove({"9", "none"});  // no such row
  {
    OwnedRow nw({"3", "x"});
    nw.row[1] = Datum::unchanged();
    s.update(bag, datums({"1", "x"}), nw.row);
    m.bag.erase(m.bag.find(Values{"1", "x"}));
    m.bag.insert(Values{"3", "x"});
  }

  // Truncate in the middle: committed and spilled rows go, later ones stay.
  for (int i = 301; i <= 3000; ++i) {
    m.logs[i] = item(i, padded("log " + std::to_string(i)));
    s.upsert(logs, datums(m.logs[i]));
  }
  s.truncate(logs);
  m.logs.clear();
  EXPECT_EQ(s.count(logs), 0u);
  for (int i = 5001; i <= 5100; ++i) {
    m.logs[i] = item(i, "after " + std::to_string(i));
    s.upsert(logs, datums(m.logs[i]));
  }
  upsert_items(12001, 13000);
  expect_contents(s, m);
  if (!commit) return;
  s.write_state(streaming_at(0x200));
  s.commit();
}

// Keys visible under FF FF FF FF, read with RocksDB itself (the store must be closed).
size_t overlay_keys(const std::string& dir) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status st = rocksdb::DB::Open(rocksdb::Options(), dir, &raw);
  EXPECT_TRUE(st.ok()) << st.ToString();
  if (!st.ok()) return SIZE_MAX;
  std::unique_ptr<rocksdb::DB> db(raw);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  size_t n = 0;
  for (it->Seek(std::string(4, '\xFF')); it->Valid(); it->Next()) ++n;
  std::string pending;
  if (db->Get(rocksdb::ReadOptions(), std::string("\0\0\0\0merge_pending", 17), &pending).ok())
    ++n;
  return n;
}

class SpillTest : public ::testing::Test {
 protected:
  void SetUp() override { rt::set_spill_bytes(kSmallSpill); }
  void TearDown() override {
    rt::set_spill_bytes(0);
    rt::set_crash_point("");
  }
};

TEST_F(SpillTest, SpilledTransactionCommitsExactly) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  Model m;
  {
    auto s = open(dir);
    make_base(*s, m);
    const uint64_t spills = rt::spill_count();
    big_txn(*s, m);
    EXPECT_GE(rt::spill_count() - spills, 10u);
    EXPECT_EQ(s->state().applied_lsn, Lsn(0x200));
    expect_contents(*s, m);
    // The next (small) transaction sees the merged rows.
    auto tables = s->tables();
    s->begin();
    s->remove(find_table(tables, "items"), datums({"13000", N, N, N, N, N}));
    m.items.erase(13000);
    s->write_state(streaming_at(0x300));
    s->commit();
    expect_contents(*s, m);
  }
  EXPECT_EQ(overlay_keys(dir), 0u);
  auto s = open(dir, true);
  EXPECT_EQ(s->state().applied_lsn, Lsn(0x300));
  expect_contents(*s, m);
}

// wants_commit(): false for a small transaction, true from half the spill size on (the
// stream commits there, between source transactions, rather than spill), false again once
// the transaction has spilled (it is written twice whatever happens next).
TEST_F(SpillTest, WantsACommitBeforeItWouldSpill) {
  TempDir tmp;
  auto s = open(tmp.sub("store"));
  Model m;
  make_base(*s, m);
  EXPECT_FALSE(s->wants_commit());  // outside a transaction
  TableDef items = find_table(s->tables(), "items");
  const uint64_t spills = rt::spill_count();
  s->begin();
  s->upsert(items, datums(item(1001, "small")));
  EXPECT_FALSE(s->wants_commit());
  int i = 1002;
  while (!s->wants_commit()) s->upsert(items, datums(item(i++, padded("row"))));
  EXPECT_EQ(rt::spill_count(), spills) << "wanted a commit only after spilling";
  EXPECT_GT(i, 1100);  // not at once: at about half of kSmallSpill's 64 kB
  while (rt::spill_count() == spills) s->upsert(items, datums(item(i++, padded("row"))));
  EXPECT_FALSE(s->wants_commit());
  s->rollback();
}

// A transaction that has not read spills from its write batch (no map is built): a key
// written, deleted and written again holds its last value, a deleted one stays deleted;
// one with a range delete (truncate) before its first spill spills through the map, which
// orders the range delete against the writes around it.
TEST_F(SpillTest, UnreadTransactionsSpillTheirLastWrites) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  Model m;
  {
    auto s = open(dir);
    make_base(*s, m);
    TableDef items = find_table(s->tables(), "items"), logs = find_table(s->tables(), "logs");
    const uint64_t spills = rt::spill_count();
    s->begin();
    s->upsert(items, datums(item(7, "first")));
    s->remove(items, datums(item(7, "first")));
    s->upsert(items, datums(item(7, "last")));
    m.items[7] = item(7, "last");
    s->remove(items, datums(m.items[8]));
    m.items.erase(8);
    for (int i = 2001; rt::spill_count() == spills; ++i) {
      m.items[i] = item(i, padded("new " + std::to_string(i)));
      s->upsert(items, datums(m.items[i]));
    }
    s->write_state(streaming_at(0x200));
    s->commit();
    expect_contents(*s, m);

    const uint64_t spills2 = rt::spill_count();
    s->begin();
    s->upsert(logs, datums(item(9001, "before the truncate")));
    s->truncate(logs);
    m.logs.clear();
    for (int i = 1; rt::spill_count() == spills2; ++i) {
      m.logs[i] = item(i, padded("after " + std::to_string(i)));
      s->upsert(logs, datums(m.logs[i]));
    }
    s->write_state(streaming_at(0x300));
    s->commit();
    expect_contents(*s, m);
  }
  auto s = open(dir);
  expect_contents(*s, m);
}

TEST_F(SpillTest, SpilledTransactionRollsBack) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  Model base;
  {
    auto s = open(dir);
    make_base(*s, base);
    Model m = base;
    big_txn(*s, m, /*commit=*/false);
    s->rollback();
    EXPECT_EQ(s->state().applied_lsn, Lsn(0x100));
    expect_contents(*s, base);
    // A store destroyed inside a spilled transaction rolls it back as well.
    m = base;
    big_txn(*s, m, /*commit=*/false);
  }
  EXPECT_EQ(overlay_keys(dir), 0u);
  {
    auto s = open(dir, true);
    EXPECT_EQ(s->state().applied_lsn, Lsn(0x100));
    expect_contents(*s, base);
    // A spilled transaction after a rollback starts on an empty overlay.
    Model m = base;
    big_txn(*s, m);
    expect_contents(*s, m);
  }
  EXPECT_EQ(overlay_keys(dir), 0u);
}

TEST_F(SpillTest, AlterTableRewritesABigTableInChunks) {
  TempDir tmp;
  auto s = open(tmp.sub("store"));
  TableDef t;
  t.schema = "s";
  t.name = "t";
  t.columns = {col("id", kInt8Oid, 1), col("a", 25), col("b", kInt4Oid)};
  auto row = [](int i) { return Values{std::to_string(i), padded("a" + std::to_string(i)),
                                       std::to_string(-i)}; };
  s->begin();
  s->create_table(t);
  for (int i = 1; i <= 4000; ++i) s->upsert(t, datums(row(i)));
  s->write_state(streaming_at(0x100));
  s->commit();

  // In one transaction: more rows (spilled), then a key change (key b), then changes
  // under the new key.
  TableDef rekeyed = t;
  rekeyed.columns[0].key_position = 0;
  rekeyed.columns[2].key_position = 1;
  const uint64_t spills = rt::spill_count();
  s->begin();
  for (int i = 4001; i <= 8000; ++i) s->upsert(t, datums(row(i)));
  s->remove(t, datums({"10", N, N}));
  s->alter_table(t, rekeyed, {});
  s->remove(rekeyed, datums({N, N, "-20"}));
  s->upsert(rekeyed, datums({"99999", "new", "-30"}));  // replaces the row with b = -30
  EXPECT_EQ(s->count(rekeyed), 7998u);
  s->write_state(streaming_at(0x200));
  s->commit();
  EXPECT_GT(rt::spill_count() - spills, 5u);
  std::vector<Values> want;
  for (int i = 8000; i >= 1; --i) {  // by b ascending
    if (i == 10 || i == 20) continue;
    want.push_back(i == 30 ? Values{"99999", "new", "-30"} : row(i));
  }
  EXPECT_EQ(scan(*s, rekeyed), want);

  // Dropping the key rewrites into a keyless table.
  TableDef keyless = rekeyed;
  for (auto& c : keyless.columns) c.key_position = 0;
  s->begin();
  s->alter_table(rekeyed, keyless, {});
  s->remove(keyless, datums(row(1)));
  s->commit();
  EXPECT_EQ(s->count(keyless), 7997u);
}

// ---- crash during a large transaction: the child dies at a named point ----

[[noreturn]] void big_txn_then_die(const std::string& dir, const char* point, int nth) {
  rt::set_spill_bytes(kSmallSpill);
  auto s = open(dir);
  Model m;
  make_base(*s, m);  // spills too: the crash point counts from the big transaction on
  rt::set_crash_point(point, nth);
  big_txn(*s, m);
  [[maybe_unused]] Store* leaked = s.release();  // the process dies with the DB open
  _exit(0);
}

// Runs big_txn_then_die in a child, then checks the store holds exactly the old or the new
// state (as `committed` says).
void crash_test(const char* env, const char* point, int nth, bool committed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::optional<TempDir> tmp;
  std::string dir = crash_dir(env, tmp);
  EXPECT_EXIT(big_txn_then_die(dir, point, nth), ::testing::ExitedWithCode(rt::kCrashExitCode),
              "");
  unsetenv(env);
  Model old_model, new_model;
  {
    // The models, computed on a scratch store.
    TempDir scratch;
    auto s = open(scratch.sub("model"));
    rt::set_spill_bytes(kSmallSpill);
    make_base(*s, old_model);
    new_model = old_model;
    big_txn(*s, new_model);
    rt::set_spill_bytes(0);
  }
  {
    // A reader (a secondary instance: no lock, no recovery) on the store as the crash left
    // it, before a writer completes or discards the transaction: all of it or none of it,
    // like the writer (it reads the overlay once merge_pending is committed, only then).
    auto r = open_rocksdb_reader(dir);
    EXPECT_EQ(r->state().applied_lsn, Lsn(committed ? 0x200 : 0x100)) << point;
    expect_contents(*r, committed ? new_model : old_model);
  }
  {
    auto s = open(dir, true);
    EXPECT_EQ(s->state().applied_lsn, Lsn(committed ? 0x200 : 0x100)) << point;
    expect_contents(*s, committed ? new_model : old_model);
  }
  EXPECT_EQ(overlay_keys(dir), 0u);
}

TEST(RocksDbStoreCrash, KillAtFirstSpillKeepsTheOldState) {
  crash_test("PGSEED_TEST_CRASH_DIR_SPILL1", "spill", 1, false);
}

TEST(RocksDbStoreCrash, KillMidSpillKeepsTheOldState) {
  crash_test("PGSEED_TEST_CRASH_DIR_SPILL", "spill", 12, false);
}

TEST(RocksDbStoreCrash, KillAfterCommitRecordKeepsTheNewState) {
  crash_test("PGSEED_TEST_CRASH_DIR_RECORD", "commit_record", 1, true);
}

TEST(RocksDbStoreCrash, KillMidMergeKeepsTheNewState) {
  crash_test("PGSEED_TEST_CRASH_DIR_MERGE", "merge", 3, true);
}

// The merge that open() redoes can itself be interrupted, and redone again.
TEST(RocksDbStoreCrash, KillDuringTheMergeAtOpenKeepsTheNewState) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::optional<TempDir> tmp;
  const char* env = "PGSEED_TEST_CRASH_DIR_REMERGE";
  std::string dir = crash_dir(env, tmp);
  EXPECT_EXIT(big_txn_then_die(dir, "commit_record", 1),
              ::testing::ExitedWithCode(rt::kCrashExitCode), "");
  EXPECT_EXIT(
      {
        rt::set_spill_bytes(kSmallSpill);
        rt::set_crash_point("merge", 2);
        open(dir, true).release();
        _exit(0);
      },
      ::testing::ExitedWithCode(rt::kCrashExitCode), "");
  unsetenv(env);
  Model old_model, new_model;
  {
    TempDir scratch;
    auto s = open(scratch.sub("model"));
    make_base(*s, old_model);
    new_model = old_model;
    rt::set_spill_bytes(kSmallSpill);
    big_txn(*s, new_model);
    rt::set_spill_bytes(0);
  }
  {
    auto r = open_rocksdb_reader(dir);  // half merged twice: still all of it
    EXPECT_EQ(r->state().applied_lsn, Lsn(0x200));
    expect_contents(*r, new_model);
  }
  {
    auto s = open(dir, true);
    EXPECT_EQ(s->state().applied_lsn, Lsn(0x200));
    expect_contents(*s, new_model);
  }
  EXPECT_EQ(overlay_keys(dir), 0u);
}

// ---- memory: a 1M-row transaction in a child process, whose peak RSS is measured ----

[[noreturn]] void million_row_txn(const std::string& dir) {
  auto s = open(dir);
  TableDef t;
  t.schema = "public";
  t.name = "events";
  t.columns = {col("id", kInt8Oid, 1), col("payload", 25)};
  s->begin();
  s->create_table(t);
  s->write_state(streaming_at(0x100));
  s->commit();
  const std::string payload(100, 'x');
  s->begin();
  for (int i = 1; i <= 1000000; ++i) {
    std::string id = std::to_string(i);
    Row row{Datum::of(id), Datum::of(payload)};
    s->upsert(t, row);
  }
  s->write_state(streaming_at(0x200));
  s->commit();
  const uint64_t n = s->count(t);
  s.reset();
  exit_reporting_peak_rss(dir, n);
}

TEST(RocksDbStoreMemory, MillionRowTransactionStaysUnder100MB) {
  expect_million_rows_within_memory("PGSEED_TEST_MEMORY_DIR", "1M-row transaction", million_row_txn);
}

}  // namespace
}  // namespace pgseed
