// The store conformance suite: what store.h promises, checked on every store in
// tests/store_kinds.h (a real SQLite file and a real RocksDB directory in a temporary
// folder, no server). A store-specific test belongs in that store's own test file; a test
// here states the contract, and both stores pass it.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "model/value_codec.h"
#include "pgseed/error.h"
#include "store/store.h"
#include "store/store_txn.h"
#include "store_kinds.h"
#include "unit/store_test_support.h"

namespace pgseed {
namespace {

using namespace test_support;

class StoreConformance : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<Store> open(const std::string& path, bool must_exist = false) {
    return Store::open(store_uri(GetParam(), path), must_exist);
  }
};

// The rows of a table without a key, which a scan returns in no particular order.
std::vector<Values> sorted(std::vector<Values> rows) {
  std::sort(rows.begin(), rows.end());
  return rows;
}

StoreState streaming_state(uint64_t applied) {
  StoreState st;
  st.phase = StoreState::Phase::kStreaming;
  st.system_id = "7300000000000000001";
  st.database = "db";
  st.slot = "slot";
  st.publication = "pub";
  st.consistent_point = Lsn(0x100);
  st.applied_lsn = Lsn(applied);
  return st;
}

// ---- tables, rows, changes, reopen ----

TEST_P(StoreConformance, CreateInsertScanInKeyOrderAndReopen) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  TableDef items = items_def();
  std::vector<Values> rows;
  std::mt19937_64 rng(31);
  std::set<int> ids;  // the rows of a copy have distinct keys
  while (ids.size() < 500) ids.insert(static_cast<int>(rng() % 100000) - 50000);
  ids.erase(7), ids.erase(8), ids.erase(9);
  int n = 0;
  for (int id : ids) {
    ++n;
    rows.push_back({std::to_string(id), "name " + std::to_string(n), "12.50",
                    format_float8(n / 3.0), "\\x00ff", n % 2 ? "t" : "f"});
  }
  rows.push_back({"7", std::nullopt, "NaN", "NaN", std::nullopt, std::nullopt});
  rows.push_back({"8", "", "-0.000", "-0", "\\x", "f"});
  rows.push_back({"9", "tab\there", "12.3400", "Infinity", "\\x", "t"});
  {
    auto s = open(dir);
    EXPECT_EQ(s->state().phase, StoreState::Phase::kEmpty);
    s->begin();
    s->create_table(items);
    EXPECT_GT(items.id, 0u);
    insert(*s, items, rows);
    StoreState st;
    st.phase = StoreState::Phase::kStreaming;
    st.system_id = "7300000000000000001";
    st.database = "db";
    st.slot = "slot";
    st.publication = "pub";
    st.created_publication = true;
    st.consistent_point = Lsn(0x16B374D848);
    st.applied_lsn = Lsn(0x16B374D900);
    st.last_commit_time = "2024-01-02 03:04:05+00";
    st.timeline = 3;
    s->write_state(st);
    EXPECT_EQ(s->state().phase, StoreState::Phase::kEmpty);  // not committed yet
    s->commit();
  }
  // Expected: by id (numeric order).
  std::map<int, Values> want;
  for (const auto& r : rows) want[std::stoi(*r[0])] = r;
  auto s = open(dir, true);
  StoreState st = s->state();
  EXPECT_EQ(st.phase, StoreState::Phase::kStreaming);
  EXPECT_EQ(st.system_id, "7300000000000000001");
  EXPECT_EQ(st.database, "db");
  EXPECT_EQ(st.slot, "slot");
  EXPECT_EQ(st.publication, "pub");
  EXPECT_TRUE(st.created_publication);
  EXPECT_EQ(st.consistent_point, Lsn(0x16B374D848));
  EXPECT_EQ(st.applied_lsn, Lsn(0x16B374D900));
  EXPECT_EQ(st.last_commit_time, "2024-01-02 03:04:05+00");
  EXPECT_EQ(st.timeline, 3u);
  auto tables = s->tables();
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables[0].id, items.id);
  EXPECT_EQ(tables[0].name, "items");
  EXPECT_EQ(tables[0].source_oid, 16400u);
  ASSERT_EQ(tables[0].columns.size(), items.columns.size());
  EXPECT_EQ(tables[0].columns[0].key_position, 1);
  EXPECT_EQ(tables[0].columns[2].type_name, "t1700");
  std::vector<Values> got = scan(*s, items);
  ASSERT_EQ(got.size(), want.size());
  size_t i = 0;
  for (const auto& [id, r] : want) EXPECT_EQ(got[i++], r) << "id " << id;
  EXPECT_EQ(s->count(items), want.size());
}

TEST_P(StoreConformance, UpsertUpdateUnchangedAndKeyChange) {
  TempDir tmp;
  auto s = open(tmp.sub("store"));
  TableDef items = items_def();
  s->begin();
  s->create_table(items);
  insert(*s, items,
         {{"1", "one", "1.0", "1", "\\x01", "t"}, {"2", "two", "2.0", "2", "\\x02", "f"}});
  // Reads-your-writes: an unchanged TOAST value of a row inserted in this transaction.
  OwnedRow upd({"1", "uno", "1.5", "1", "\\x01", "t"});
  upd.row[4] = Datum::unchanged();
  s->update(items, {}, upd.row);
  s->commit();
  EXPECT_EQ(scan(*s, items), (std::vector<Values>{{"1", "uno", "1.5", "1", "\\x01", "t"},
                                                  {"2", "two", "2.0", "2", "\\x02", "f"}}));

  s->begin();
  s->upsert(items, datums({"2", "deux", N, N, N, N}));
  // Key change 1 -> 10 keeping an unchanged value from the stored row.
  OwnedRow old_key({"1", N, N, N, N, N});
  OwnedRow moved({"10", "ten", "10", "10", "\\x0a", "f"});
  moved.row[1] = Datum::unchanged();
  s->update(items, old_key.row, moved.row);
  s->commit();
  EXPECT_EQ(scan(*s, items), (std::vector<Values>{{"2", "deux", N, N, N, N},
                                                  {"10", "uno", "10", "10", "\\x0a", "f"}}));

  // Rollback leaves nothing behind; reading inside the transaction sees its writes.
  s->begin();
  s->remove(items, datums({"2", N, N, N, N, N}));
  s->upsert(items, datums({"3", "three", N, N, N, N}));
  EXPECT_EQ(s->count(items), 2u);
  EXPECT_EQ(scan(*s, items)[0][0], "3");
  s->rollback();
  EXPECT_EQ(s->count(items), 2u);
  EXPECT_EQ(scan(*s, items)[0][0], "2");

  // An unchanged value of a row the store does not have cannot be merged.
  s->begin();
  OwnedRow missing({"99", "x", N, N, N, N});
  missing.row[1] = Datum::unchanged();
  try {
    s->update(items, {}, missing.row);
    ADD_FAILURE() << "update of a missing row with unchanged values succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::kStore);
  }
  s->rollback();

  // Writes outside a transaction are refused.
  EXPECT_THROW(s->upsert(items, datums({"4", N, N, N, N, N})), Error);
}

TEST_P(StoreConformance, KeylessTableKeepsDuplicatesAndRemovesOne) {
  TempDir tmp;
  auto s = open(tmp.sub("store"));
  TableDef bag = bag_def();
  s->begin();
  s->create_table(bag);
  insert(*s, bag, {{"1", "x"}, {"1", "x"}, {"1", "x"}, {"2", N}, {N, "y"}});
  s->commit();
  EXPECT_EQ(s->count(bag), 5u);

  s->begin();
  s->remove(bag, datums({"1", "x"}));
  s->remove(bag, datums({"5", "nothing"}));  // no such row: nothing happens
  s->upsert(bag, datums({"2", N}));
  EXPECT_EQ(s->count(bag), 5u);
  s->remove(bag, datums({"2", N}));  // one of the two, inside the transaction
  s->commit();
  EXPECT_EQ(sorted(scan(*s, bag)), sorted({{"1", "x"}, {"1", "x"}, {"2", N}, {N, "y"}}));

  // Update changes exactly one of two equal rows; unchanged values come from the old row.
  s->begin();
  OwnedRow nw({"3", "x"});
  nw.row[1] = Datum::unchanged();
  s->update(bag, datums({"1", "x"}), nw.row);
  s->commit();
  EXPECT_EQ(sorted(scan(*s, bag)), sorted({{"1", "x"}, {"2", N}, {"3", "x"}, {N, "y"}}));

  // Update of a row that is not there inserts the new one.
  s->begin();
  s->update(bag, datums({"8", "z"}), datums({"9", "z"}));
  s->commit();
  EXPECT_EQ(s->count(bag), 5u);
}

// Rows of a keyless table that agree on their first columns (a store may look rows up by
// those, e.g. SQLite's match index) are still told apart by the rest, NULLs and bytea
// included; and after the table is rebuilt without its first column.
TEST_P(StoreConformance, KeylessRowsEqualOnTheirFirstColumnsAreToldApart) {
  TempDir tmp;
  auto s = open(tmp.sub("store"));
  TableDef wide;
  wide.source_oid = 16600;
  wide.schema = "public";
  wide.name = "wide_bag";
  wide.columns = {col("a", kInt4Oid), col("d", kByteaOid), col("b", 25), col("c", kBoolOid),
                  col("e", kInt4Oid), col("f", 25),        col("g", 25)};
  s->begin();
  s->create_table(wide);
  insert(*s, wide, {{"1", "\\x00", "x", "t", "5", "p", "q"},
                    {"1", "\\x01", "x", "t", "5", "p", "q"},
                    {"1", "\\x00", "x", "t", "5", "p", N},
                    {"1", "\\x00", "x", "t", "5", "p", "q"},
                    {N, N, N, N, N, N, "r"}});
  s->commit();

  s->begin();
  s->remove(wide, datums({"1", "\\x00", "x", "t", "5", "p", N}));
  s->update(wide, datums({"1", "\\x01", "x", "t", "5", "p", "q"}),
            datums({"1", "\\x01", "x", "t", "5", "p", "changed"}));
  s->update(wide, datums({N, N, N, N, N, N, "r"}), datums({N, N, N, N, N, N, "s"}));
  s->remove(wide, datums({"1", "\\x00", "x", "t", "5", "p", "q"}));  // one of the two
  s->commit();
  EXPECT_EQ(sorted(scan(*s, wide)), sorted({{"1", "\\x00", "x", "t", "5", "p", "q"},
                                            {"1", "\\x01", "x", "t", "5", "p", "changed"},
                                            {N, N, N, N, N, N, "s"}}));

  TableDef narrower = wide;
  narrower.columns.erase(narrower.columns.begin());
  s->begin();
  s->alter_table(wide, narrower, {});
  s->commit();
  s->begin();
  s->remove(narrower, datums({"\\x01", "x", "t", "5", "p", "changed"}));
  s->update(narrower, datums({"\\x00", "x", "t", "5", "p", "q"}), datums({"\\x00", "x", "t", "5", "p", "z"}));
  s->commit();
  EXPECT_EQ(sorted(scan(*s, narrower)),
            sorted({{"\\x00", "x", "t", "5", "p", "z"}, {N, N, N, N, N, "s"}}));
}

// In one transaction, lookups of keyless rows one after another (the RocksDB store keeps
// its database iterator between them, with a new bound each time): a row the store does
// not have is not found in the row after it, and rows removed before stay removed.
TEST_P(StoreConformance, KeylessLookupsInOneTransactionFindOnlyTheirOwnRows) {
  TempDir tmp;
  auto s = open(tmp.sub("store"));
  TableDef t;
  t.schema = "s";
  t.name = "kl";
  t.columns = {col("a", 25)};
  s->begin();
  s->create_table(t);
  insert(*s, t, {{"ba"}, {"ca"}, {"da"}, {"ea"}});
  s->commit();
  s->begin();
  s->remove(t, datums({"da"}));
  s->remove(t, datums({"bb"}));  // not in the store: "ca" follows it, of the same length
  s->remove(t, datums({"cb"}));  // nor this one ("da", after it, is gone already)
  s->update(t, datums({"zz"}), datums({"zy"}));  // absent: inserted, not "ea" changed
  s->commit();
  EXPECT_EQ(sorted(scan(*s, t)), sorted({{"ba"}, {"ca"}, {"ea"}, {"zy"}}));
}

TEST_P(StoreConformance, TruncateDropAndRecreate) {
  TempDir tmp;
  auto s = open(tmp.sub("store"));
  TableDef items = items_def(), bag = bag_def();
  s->begin();
  s->create_table(items);
  s->create_table(bag);
  insert(*s, items, {{"1", "a", N, N, N, N}, {"2", "b", N, N, N, N}});
  insert(*s, bag, {{"1", "a"}});
  s->commit();

  s->begin();
  s->truncate(items);
  EXPECT_EQ(s->count(items), 0u);
  s->upsert(items, datums({"3", "c", N, N, N, N}));  // after the truncate: kept
  s->commit();
  EXPECT_EQ(scan(*s, items), (std::vector<Values>{{"3", "c", N, N, N, N}}));
  EXPECT_EQ(s->count(bag), 1u);

  // create_table with the name of an existing table replaces it (new id, no rows).
  s->begin();
  TableDef again = items_def();
  s->create_table(again);
  EXPECT_NE(again.id, items.id);
  s->commit();
  EXPECT_EQ(s->count(again), 0u);
  EXPECT_THROW(s->count(items), Error);
  ASSERT_EQ(s->tables().size(), 2u);
  EXPECT_EQ(s->tables()[0].name, "bag");  // creation order
  EXPECT_EQ(s->tables()[1].id, again.id);

  s->begin();
  s->drop_table(bag);
  s->commit();
  ASSERT_EQ(s->tables().size(), 1u);
  EXPECT_THROW(s->count(bag), Error);
}

TEST_P(StoreConformance, AlterTableAddDropColumns) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  TableDef t;
  t.schema = "s";
  t.name = "t";
  t.columns = {col("id", kInt8Oid, 1), col("a", 25), col("b", kInt4Oid)};
  {
    auto s = open(dir);
    s->begin();
    s->create_table(t);
    insert(*s, t, {{"1", "a1", "10"}, {"2", "a2", "20"}});
    s->commit();

    // ADD COLUMN c DEFAULT 'dflt', then DROP COLUMN a: no row is rewritten.
    TableDef t2 = t;
    t2.columns.push_back(col("c", 25));
    std::vector<Datum> fill = {Datum::null(), Datum::null(), Datum::null(), Datum::of("dflt")};
    s->begin();
    s->alter_table(t, t2, fill);
    s->upsert(t2, datums({"3", "a3", "30", "own"}));
    s->commit();
    EXPECT_EQ(scan(*s, t2),
              (std::vector<Values>{
                  {"1", "a1", "10", "dflt"}, {"2", "a2", "20", "dflt"}, {"3", "a3", "30", "own"}}));
    TableDef t3 = t2;
    t3.columns.erase(t3.columns.begin() + 1);
    s->begin();
    s->alter_table(t2, t3, {});
    s->commit();
    // Re-adding a column named like the dropped one gives NULLs, not the old values.
    TableDef t4 = t3;
    t4.columns.push_back(col("a", 25));
    s->begin();
    s->alter_table(t3, t4, {});
    s->upsert(t4, datums({"4", "40", N, "a4"}));
    s->commit();
    t = t4;
  }
  auto s = open(dir);
  ASSERT_EQ(s->tables().size(), 1u);
  EXPECT_EQ(s->tables()[0].columns.size(), 4u);
  EXPECT_EQ(scan(*s, t), (std::vector<Values>{{"1", "10", "dflt", N},
                                              {"2", "20", "dflt", N},
                                              {"3", "30", "own", N},
                                              {"4", "40", N, "a4"}}));

  // A key change rewrites the rows under the new key (here: key b, descending ids).
  TableDef rekeyed = t;
  rekeyed.columns[0].key_position = 0;
  rekeyed.columns[1].key_position = 1;
  s->begin();
  s->upsert(t, datums({"5", "-5", N, N}));
  s->alter_table(t, rekeyed, {});
  s->commit();
  auto rows = scan(*s, rekeyed);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0], (Values{"5", "-5", N, N}));
  EXPECT_EQ(rows[1], (Values{"1", "10", "dflt", N}));
  s->begin();
  s->remove(rekeyed, datums({N, "20", N, N}));
  s->commit();
  EXPECT_EQ(s->count(rekeyed), 4u);

  // Dropping the key (REPLICA IDENTITY FULL) rewrites into a keyless table.
  TableDef keyless = rekeyed;
  for (auto& c : keyless.columns) c.key_position = 0;
  keyless.columns.push_back(col("z", kBoolOid));
  s->begin();
  s->alter_table(rekeyed, keyless,
                 std::vector<Datum>{Datum::null(), Datum::null(), Datum::null(), Datum::null(),
                                    Datum::of("t")});
  s->commit();
  EXPECT_EQ(sorted(scan(*s, keyless)), sorted({{"1", "10", "dflt", N, "t"},
                                               {"3", "30", "own", N, "t"},
                                               {"4", "40", N, "a4", "t"},
                                               {"5", "-5", N, N, "t"}}));
  s->begin();
  s->remove(keyless, datums({"1", "10", "dflt", N, "t"}));
  s->commit();
  EXPECT_EQ(s->count(keyless), 3u);
}

// The copy's workers encode rows on their own threads (row_encoder) and the writer stores
// that encoding (insert_encoded): the same rows as insert_batch would store, keyed or not;
// and an encoding made before the table's layout changed is not stored in the old layout.
TEST_P(StoreConformance, RowsEncodedOnAnotherThreadAreStoredAsInsertBatchStoresThem) {
  TempDir tmp;
  auto s = open(tmp.sub("store"));
  TableDef keyed;
  keyed.schema = "s";
  keyed.name = "keyed";
  keyed.columns = {col("id", kInt8Oid, 1), col("a", 25), col("b", kInt4Oid)};
  TableDef keyless = keyed;
  keyless.name = "keyless";
  for (auto& c : keyless.columns) c.key_position = 0;
  s->begin();
  s->create_table(keyed);
  s->create_table(keyless);
  s->commit();

  auto encode_elsewhere = [](const Store::RowEncoder& encoder, const RowBatch& rows) {
    std::unique_ptr<Store::EncodedRows> out;
    if (encoder) std::thread([&] { out = encoder(rows); }).join();
    return out;
  };
  const std::vector<Values> rows = {{"2", "two", N}, {"1", "one", "10"}, {"-7", N, "-1"}};
  RowBatch batch = batch_of(rows);
  RowBatch twice = batch_of({{"5", "same", "5"}, {"5", "same", "5"}});
  Store::RowEncoder keyed_encoder = s->row_encoder(keyed);
  Store::RowEncoder keyless_encoder = s->row_encoder(keyless);
  s->begin();
  s->insert_encoded(keyed, batch, encode_elsewhere(keyed_encoder, batch));
  s->insert_encoded(keyless, batch, encode_elsewhere(keyless_encoder, batch));
  s->insert_encoded(keyless, twice, encode_elsewhere(keyless_encoder, twice));
  s->commit();
  EXPECT_EQ(scan(*s, keyed), (std::vector<Values>{{"-7", N, "-1"}, {"1", "one", "10"}, {"2", "two", N}}));
  EXPECT_EQ(sorted(scan(*s, keyless)),
            sorted({{"2", "two", N}, {"1", "one", "10"}, {"-7", N, "-1"}, {"5", "same", "5"}, {"5", "same", "5"}}));

  // Encoded for the table as it was; stored after a column was added: the new layout.
  RowBatch more = batch_of({{"3", "three", "30"}});
  std::unique_ptr<Store::EncodedRows> stale = encode_elsewhere(keyed_encoder, more);
  TableDef wider = keyed;
  wider.columns.push_back(col("c", 25));
  RowBatch more_wide = batch_of({{"3", "three", "30", "c3"}});
  s->begin();
  s->alter_table(keyed, wider, std::vector<Datum>{Datum::null(), Datum::null(), Datum::null(), Datum::of("new")});
  s->insert_encoded(wider, more_wide, std::move(stale));
  s->commit();
  EXPECT_EQ(scan(*s, wider), (std::vector<Values>{{"-7", N, "-1", "new"},
                                                 {"1", "one", "10", "new"},
                                                 {"2", "two", N, "new"},
                                                 {"3", "three", "30", "c3"}}));
}

TEST_P(StoreConformance, ResetRemovesEverything) {
  TempDir tmp;
  auto s = open(tmp.sub("store"));
  TableDef items = items_def();
  s->begin();
  s->create_table(items);
  insert(*s, items, {{"1", "a", N, N, N, N}});
  StoreState st;
  st.phase = StoreState::Phase::kCopying;
  st.slot = "x";
  s->write_state(st);
  s->commit();
  s->begin();
  s->reset();
  TableDef fresh = items_def();
  s->create_table(fresh);
  s->commit();
  EXPECT_EQ(s->state().phase, StoreState::Phase::kEmpty);
  EXPECT_EQ(s->state().slot, "");
  ASSERT_EQ(s->tables().size(), 1u);
  EXPECT_EQ(s->count(fresh), 0u);
}

TEST_P(StoreConformance, CopyBatchesAreReadableInsideTheirTransaction) {
  TempDir tmp;
  auto s = open(tmp.sub("store"));
  TableDef items = items_def(), bag = bag_def();
  StoreState st;
  st.phase = StoreState::Phase::kCopying;
  s->begin();
  s->create_table(items);
  s->create_table(bag);
  s->write_state(st);
  s->commit();
  // Copy batches skip the transaction's read index; a read inside it rebuilds the index.
  s->begin();
  insert(*s, items, {{"1", "a", N, N, N, N}, {"2", "b", N, N, N, N}});
  insert(*s, bag, {{"1", "a"}, {"1", "a"}});
  OwnedRow upd({"1", N, "5", N, N, N});
  upd.row[1] = Datum::unchanged();
  s->update(items, {}, upd.row);
  s->remove(bag, datums({"1", "a"}));
  insert(*s, items, {{"3", "c", N, N, N, N}});
  EXPECT_EQ(s->count(items), 3u);
  s->commit();
  EXPECT_EQ(scan(*s, items),
            (std::vector<Values>{
                {"1", "a", "5", N, N, N}, {"2", "b", N, N, N, N}, {"3", "c", N, N, N, N}}));
  EXPECT_EQ(s->count(bag), 1u);
  s->begin();
  st.phase = StoreState::Phase::kStreaming;
  s->write_state(st);
  s->commit();
  EXPECT_EQ(s->count(items), 3u);
}


// ---- transactions ----

TEST_P(StoreConformance, NothingIsVisibleBeforeCommitAndRollbackLeavesTheLastCommit) {
  TempDir tmp;
  auto s = open(tmp.sub("store"));
  TableDef items = items_def();
  {
    StoreTxn txn(*s);
    s->create_table(items);
    insert(*s, items, {{"1", "a", N, N, N, N}});
    s->write_state(streaming_state(0x200));
    EXPECT_EQ(s->state().phase, StoreState::Phase::kEmpty);
    txn.commit();
  }
  EXPECT_EQ(s->state().applied_lsn, Lsn(0x200));

  s->begin();
  s->write_state(streaming_state(0x300));
  s->upsert(items, datums({"2", "b", N, N, N, N}));
  TableDef other = bag_def();
  s->create_table(other);
  s->rollback();
  EXPECT_EQ(s->state().applied_lsn, Lsn(0x200));
  EXPECT_EQ(scan(*s, items), (std::vector<Values>{{"1", "a", N, N, N, N}}));
  ASSERT_EQ(s->tables().size(), 1u);
  EXPECT_EQ(s->tables()[0].id, items.id);
}

TEST_P(StoreConformance, StoreTxnRollsBackUnlessCommitted) {
  TempDir tmp;
  auto s = open(tmp.sub("store"));
  TableDef items = items_def();
  {
    StoreTxn txn(*s);
    s->create_table(items);
    s->write_state(streaming_state(0x200));
    txn.commit();
  }
  // Destroyed uncommitted, also while an exception unwinds: the state stays at 0x200.
  try {
    StoreTxn txn(*s);
    s->upsert(items, datums({"1", "a", N, N, N, N}));
    s->write_state(streaming_state(0x300));
    throw Error(ErrorCategory::kInternal, "failure between write and commit");
  } catch (const Error&) {
  }
  EXPECT_EQ(s->state().applied_lsn, Lsn(0x200));
  EXPECT_EQ(s->count(items), 0u);
  // The store is usable again: the next transaction commits.
  {
    StoreTxn txn(*s);
    s->upsert(items, datums({"2", "b", N, N, N, N}));
    s->write_state(streaming_state(0x400));
    txn.commit();
  }
  EXPECT_EQ(s->state().applied_lsn, Lsn(0x400));
  EXPECT_EQ(s->count(items), 1u);
}

TEST_P(StoreConformance, ACommittedTransactionSurvivesReopenAnUncommittedOneDoesNot) {
  TempDir tmp;
  const std::string path = tmp.sub("store");
  TableDef items = items_def();
  {
    auto s = open(path);
    s->begin();
    s->create_table(items);
    insert(*s, items, {{"1", "a", N, N, N, N}});
    s->write_state(streaming_state(0x200));
    s->commit();
    s->begin();
    s->upsert(items, datums({"2", "b", N, N, N, N}));
    s->write_state(streaming_state(0x300));
    // Closed inside the transaction: rolled back.
  }
  auto s = open(path, true);
  EXPECT_EQ(s->state().applied_lsn, Lsn(0x200));
  EXPECT_EQ(scan(*s, items), (std::vector<Values>{{"1", "a", N, N, N, N}}));
}

// ---- reading ----

TEST_P(StoreConformance, LookupFindsTheRowByKey) {
  TempDir tmp;
  auto s = open(tmp.sub("store"));
  TableDef items = items_def();
  s->begin();
  s->create_table(items);
  insert(*s, items, {{"1", "one", "1.50", N, N, "t"}, {"-2", "minus two", N, N, "\\x00", N}});
  s->commit();
  auto found = [&](const std::string& key) {
    std::vector<Values> rows;
    std::vector<std::string> k{key};
    bool hit = s->lookup(items, k, [&](const Row& row) {
      Values v;
      for (const Datum& d : row)
        v.push_back(d.is_null() ? std::nullopt : std::optional<std::string>(d.text));
      rows.push_back(std::move(v));
    });
    EXPECT_EQ(hit, !rows.empty());
    return rows;
  };
  EXPECT_EQ(found("1"), (std::vector<Values>{{"1", "one", "1.50", N, N, "t"}}));
  EXPECT_EQ(found("-2"), (std::vector<Values>{{"-2", "minus two", N, N, "\\x00", N}}));
  EXPECT_TRUE(found("3").empty());
  std::vector<std::string> two_keys{"1", "2"};
  EXPECT_THROW(s->lookup(items, two_keys, [](const Row&) {}), Error);
}

TEST_P(StoreConformance, ValuesReadBackAsPostgresqlPrintsThem) {
  TempDir tmp;
  const std::string path = tmp.sub("store");
  TableDef t;
  t.schema = "public";
  t.name = "vals";
  t.columns = {col("id", kInt4Oid, 1), col("f8", kFloat8Oid), col("f4", kFloat4Oid),
               col("b", kBoolOid),     col("by", kByteaOid),  col("i8", kInt8Oid),
               col("n", kNumericOid),  col("tx", kTextOid),   col("ts", kTimestamptzOid)};
  std::vector<Values> rows = {
      {"1", "NaN", "NaN", "t", "\\x", "-9223372036854775808", "NaN", "", "2024-01-02 03:04:05+00"},
      {"2", "-0", "-0", "f", "\\x00ff", "9223372036854775807", "0.000", "tab\there\nline",
       "-infinity"},
      {"3", "Infinity", "-Infinity", N, N, "0", "-12.3400", "\"quoted\", 'single'",
       "2000-01-01 00:00:00.5+00"},
      {"4", "0.1", "0.1", "t", "\\xdeadbeef", "-1", "100000", "\xe2\x82\xac", N},
      {"5", "1e+300", "3.4028235e+38", "f", "\\x5c", "42", "Infinity", "NULL", "infinity"},
      {"6", "5e-324", "1e-45", N, N, N, N, N, N},
      {"7", N, N, N, N, N, N, N, N},
  };
  {
    auto s = open(path);
    s->begin();
    s->create_table(t);
    insert(*s, t, rows);
    s->commit();
    EXPECT_EQ(scan(*s, t), rows);
  }
  auto s = open(path, true);
  EXPECT_EQ(scan(*s, t), rows);
}

// ---- the table's recorded shape and sync state ----

TEST_P(StoreConformance, TableDefinitionAndSyncStateSurviveReopen) {
  TempDir tmp;
  const std::string path = tmp.sub("store");
  TableDef items = items_def();
  items.columns[2].type_name = "numeric(12,2)";
  items.columns[2].type_mod = (12 << 16 | 2) + 4;
  for (size_t i = 0; i < items.columns.size(); ++i) items.columns[i].attnum = int(i) + 1;
  items.snapshot_lsn = TableDef::kAwaitingCopy;
  items.relfilenode = 0;
  {
    auto s = open(path);
    s->begin();
    s->create_table(items);
    s->commit();
    EXPECT_TRUE(s->tables()[0].awaiting_copy());
    items.snapshot_lsn = Lsn(0x16B374D848);
    items.relfilenode = 16999;
    s->begin();
    s->set_sync_state(items);
    s->commit();
  }
  auto s = open(path, true);
  std::vector<TableDef> tables = s->tables();
  ASSERT_EQ(tables.size(), 1u);
  const TableDef& got = tables[0];
  EXPECT_EQ(got.id, items.id);
  EXPECT_EQ(got.schema, "public");
  EXPECT_EQ(got.name, "items");
  EXPECT_EQ(got.source_oid, 16400u);
  EXPECT_TRUE(got.same_columns(items));
  EXPECT_EQ(got.columns[2].type_name, "numeric(12,2)");
  EXPECT_EQ(got.columns[2].type_mod, items.columns[2].type_mod);
  EXPECT_EQ(got.columns[3].storage, StorageClass::kReal);
  EXPECT_EQ(got.snapshot_lsn, Lsn(0x16B374D848));
  EXPECT_EQ(got.relfilenode, 16999u);
  EXPECT_FALSE(got.awaiting_copy());
}

// ---- one writer ----

TEST_P(StoreConformance, ASecondWriterIsRefused) {
  TempDir tmp;
  const std::string path = tmp.sub("store");
  auto first = open(path);
  first->claim_writer();
  try {
    auto second = open(path);
    second->claim_writer();
    second->begin();
    ADD_FAILURE() << "a second writer of one store was let in";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::kStore) << e.what();
  }
  // The first writer is not disturbed.
  TableDef items = items_def();
  first->begin();
  first->create_table(items);
  first->commit();
  EXPECT_EQ(first->tables().size(), 1u);
}

// ---- the initial copy as one bulk load ----

TEST_P(StoreConformance, InterruptedBulkLoadKeepsTheTablesWhoseCopyPointWasCommitted) {
  TempDir tmp;
  const std::string path = tmp.sub("store");
  StoreState copying = streaming_state(0);
  copying.phase = StoreState::Phase::kCopying;
  TableDef done = items_def(), partial = bag_def();
  {
    auto s = open(path);
    s->begin();
    s->write_state(copying);
    s->commit();
    s->begin_bulk_load();
    s->begin();
    done.snapshot_lsn = partial.snapshot_lsn = TableDef::kAwaitingCopy;
    s->create_table(done);
    s->create_table(partial);
    s->commit();
    s->begin();
    insert(*s, done, {{"1", "a", N, N, N, N}, {"2", "b", N, N, N, N}});
    done.snapshot_lsn = Lsn(0x100);
    s->set_sync_state(done);
    insert(*s, partial, {{"1", "x"}});
    s->commit();
    s->begin();
    insert(*s, partial, {{"2", "y"}});
    s->commit();
    s->abort_bulk_load();
  }
  {
    auto s = open(path, true);
    EXPECT_EQ(s->state().phase, StoreState::Phase::kCopying);
    s->begin_bulk_load();  // resumes: keeps `done`, drops `partial`
    auto tables = s->tables();
    ASSERT_EQ(tables.size(), 1u);
    EXPECT_EQ(tables[0].id, done.id);
    EXPECT_EQ(tables[0].snapshot_lsn, Lsn(0x100));
    EXPECT_EQ(scan(*s, done), (std::vector<Values>{{"1", "a", N, N, N, N}, {"2", "b", N, N, N, N}}));
    TableDef again = bag_def();
    again.snapshot_lsn = TableDef::kAwaitingCopy;
    s->begin();
    s->create_table(again);
    insert(*s, again, {{"3", "z"}});
    again.snapshot_lsn = Lsn(0x100);
    s->set_sync_state(again);
    s->commit();
    StoreState final_state = streaming_state(0x100);
    s->finish_bulk_load(final_state);
    EXPECT_EQ(s->state().phase, StoreState::Phase::kStreaming);
  }
  auto s = open(path, true);
  EXPECT_EQ(s->state().phase, StoreState::Phase::kStreaming);
  EXPECT_EQ(s->state().applied_lsn, Lsn(0x100));
  ASSERT_EQ(s->tables().size(), 2u);
  EXPECT_EQ(s->count(s->tables()[0]), 2u);
  EXPECT_EQ(scan(*s, s->tables()[1]), (std::vector<Values>{{"3", "z"}}));
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreConformance, ::testing::ValuesIn(test_support::kStoreKinds),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace pgseed
