// The library's public API (include/pgseed/), called directly: Sync into both stores,
// Replica reads, the change callback, stop() from another thread, status, error categories.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <ostream>
#include <thread>

#include "store_kinds.h"
#include "harness.h"
#include "stream_support.h"
#include "pgseed/admin.h"
#include "pgseed/error.h"
#include "pgseed/replica.h"
#include "pgseed/sync.h"

namespace pgseed {
// gtest prints an Lsn as PostgreSQL does. Internal linkage: other test files may have theirs.
[[maybe_unused]] static void PrintTo(const Lsn& lsn, std::ostream* os) { *os << lsn.str(); }
[[maybe_unused]] static void PrintTo(ChangeKind k, std::ostream* os) { *os << to_string(k); }
[[maybe_unused]] static void PrintTo(ReplicaState::Phase p, std::ostream* os) { *os << to_string(p); }
}  // namespace pgseed

namespace pgseed::test {
namespace {

using namespace std::chrono_literals;

class LibraryTest : public StoreTest {};

// products: a single-column key, inserted out of key order (1 < 2 < 10 < 100 numerically,
// not as text). stock: a composite key whose order (product_id, warehouse) is not the
// column order. events: truncated by the callback test.
constexpr const char* kSchema = R"(
  CREATE TABLE products (id integer PRIMARY KEY, name text NOT NULL, price numeric(12,2));
  CREATE TABLE stock (warehouse text, product_id integer, qty integer NOT NULL,
                      PRIMARY KEY (product_id, warehouse));
  CREATE TABLE events (id bigint PRIMARY KEY, what text);
  INSERT INTO products VALUES (10, 'ten', 10.00), (2, 'two', 2.50), (1, 'one', NULL),
                              (100, 'hundred', 0.01);
  INSERT INTO stock VALUES ('south', 1, 0), ('north', 2, 7), ('north', 1, 5), ('east', 10, 1);
  INSERT INTO events SELECT i, 'event ' || i FROM generate_series(1, 3) i;)";

SyncOptions options_for(TestDatabase& src, const std::string& store) {
  SyncOptions o;
  o.source = src.conninfo();
  o.store = store;
  o.jobs = 2;
  o.all_tables = true;  // the tests' first runs replicate every table
  return o;
}

const TableInfo* find_table(const std::vector<TableInfo>& tables, const std::string& name) {
  for (const auto& t : tables)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<std::string> column_texts(const std::vector<Values>& rows, size_t column) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.at(column).value_or("NULL"));
  return out;
}

Lsn current_lsn(TestDatabase& src) { return Lsn::parse(src.db().value("SELECT pg_current_wal_lsn()")); }

TEST_P(LibraryTest, OneShotSyncThenReadTheReplica) {
  TestDatabase src;
  src.db().exec(kSchema);
  std::string store = temp_store(store_kind());
  Sync(options_for(src, store)).run();

  auto replica = Replica::open(store);
  ReplicaState st = replica->state();
  EXPECT_EQ(st.phase, ReplicaState::Phase::kStreaming);
  EXPECT_EQ(st.source_database, src.name());
  EXPECT_FALSE(st.slot.empty());
  EXPECT_FALSE(st.publication.empty());
  EXPECT_TRUE(st.created_publication);
  EXPECT_TRUE(st.applied_lsn.valid());
  EXPECT_LE(st.consistent_point, st.applied_lsn);

  // Tables: names as SQL writes them, source types, 1-based key positions in key order.
  std::vector<TableInfo> tables = replica->tables();
  EXPECT_EQ(tables.size(), 3u);
  const TableInfo* products = find_table(tables, "public.products");
  ASSERT_NE(products, nullptr);
  EXPECT_EQ(products->schema, "public");
  EXPECT_EQ(products->table, "products");
  EXPECT_TRUE(products->has_key);
  ASSERT_EQ(products->columns.size(), 3u);
  EXPECT_EQ(products->columns[0].name, "id");
  EXPECT_EQ(products->columns[0].type, "integer");
  EXPECT_EQ(products->columns[0].key_position, 1);
  EXPECT_EQ(products->columns[1].type, "text");
  EXPECT_EQ(products->columns[1].key_position, 0);
  EXPECT_EQ(products->columns[2].type, "numeric(12,2)");
  const TableInfo* stock = find_table(tables, "public.stock");
  ASSERT_NE(stock, nullptr);
  ASSERT_EQ(stock->columns.size(), 3u);
  EXPECT_EQ(stock->columns[0].name, "warehouse");
  EXPECT_EQ(stock->columns[0].key_position, 2);
  EXPECT_EQ(stock->columns[1].name, "product_id");
  EXPECT_EQ(stock->columns[1].key_position, 1);
  EXPECT_EQ(stock->columns[2].key_position, 0);

  // Lookups: hit, NULL column, miss; table named with or without its schema.
  EXPECT_EQ(replica->lookup("public.products", {"2"}), (Values{"2", "two", "2.50"}));
  EXPECT_EQ(replica->lookup("products", {"1"}), (Values{"1", "one", std::nullopt}));
  EXPECT_EQ(replica->lookup("products", {"3"}), std::nullopt);
  // Composite key: values in key order (product_id, warehouse).
  EXPECT_EQ(replica->lookup("stock", {"1", "north"}), (Values{"north", "1", "5"}));
  EXPECT_EQ(replica->lookup("stock", {"1", "west"}), std::nullopt);
  EXPECT_EQ(replica->lookup("stock", {"3", "north"}), std::nullopt);

  // Scans in key order: numeric for integers, then by the second key column.
  std::vector<Values> rows;
  replica->scan("products", [&](const Values& r) { rows.push_back(r); });
  EXPECT_EQ(column_texts(rows, 0), (std::vector<std::string>{"1", "2", "10", "100"}));
  rows.clear();
  replica->scan("public.stock", [&](const Values& r) { rows.push_back(r); });
  EXPECT_EQ(column_texts(rows, 1), (std::vector<std::string>{"1", "1", "2", "10"}));
  EXPECT_EQ(column_texts(rows, 0), (std::vector<std::string>{"north", "south", "north", "east"}));
  EXPECT_EQ(replica->count("products"), 4u);
  EXPECT_EQ(replica->count("stock"), 4u);

  try {
    replica->lookup("public.nope", {"1"});
    ADD_FAILURE() << "lookup in a table the store does not have did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::kConfiguration) << e.what();
  }
  replica.reset();

  // status(): healthy with the slot in place, row counts per table.
  StatusReport report = status({.source = src.conninfo(), .store = store});
  EXPECT_TRUE(report.healthy) << (report.warnings.empty() ? "" : report.warnings[0].message);
  EXPECT_TRUE(report.source_checked);
  EXPECT_TRUE(report.slot_exists);
  EXPECT_FALSE(report.slot_active);
  EXPECT_GE(report.lag_bytes, 0);
  EXPECT_EQ(report.state.phase, ReplicaState::Phase::kStreaming);
  std::vector<std::pair<std::string, uint64_t>> counts(report.tables.begin(), report.tables.end());
  std::sort(counts.begin(), counts.end());
  EXPECT_EQ(counts, (std::vector<std::pair<std::string, uint64_t>>{
                        {"public.events", 3}, {"public.products", 4}, {"public.stock", 4}}));

  // Without its slot the replica cannot be caught up: unhealthy, with a reason.
  src.db().exec("SELECT pg_drop_replication_slot('" + st.slot + "')");
  report = status({.source = src.conninfo(), .store = store});
  EXPECT_FALSE(report.healthy);
  EXPECT_FALSE(report.slot_exists);
  EXPECT_FALSE(report.warnings.empty());
}

// The contract of replica.h: a SQLite store may be read while another sync writes it, and
// each call sees the last committed state, the replica's position included.
TEST(LibraryReplica, OpenSqliteReplicaSeesLaterSyncs) {
  TestDatabase src;
  src.db().exec(kSchema);
  std::string store = temp_store("sqlite");
  Sync(options_for(src, store)).run();
  auto replica = Replica::open(store);
  Lsn before = replica->state().applied_lsn;

  src.db().exec("INSERT INTO products VALUES (7, 'seven', 7.00)");
  Lsn after_insert = current_lsn(src);
  Sync(options_for(src, store)).run();

  EXPECT_EQ(replica->lookup("products", {"7"}), (Values{"7", "seven", "7.00"}));
  EXPECT_EQ(replica->count("products"), 5u);
  EXPECT_GE(replica->state().applied_lsn, after_insert)
      << "state() of an open Replica still says " << replica->state().applied_lsn.str()
      << " (was " << before.str() << "); a fresh Replica says "
      << Replica::open(store)->state().applied_lsn.str();
}

TEST_P(LibraryTest, OnCommitReportsEachTransactionWithItsKeys) {
  TestDatabase src;
  src.db().exec(kSchema);
  std::string store = temp_store(store_kind());
  Sync(options_for(src, store)).run();

  // Five transactions; the WAL position after each bounds its commit LSN.
  std::vector<Lsn> bounds{current_lsn(src)};
  for (const char* sql : {
           "INSERT INTO products VALUES (5, 'five', 5.00)",
           "BEGIN; UPDATE products SET price = 3.00 WHERE id = 2;"
           "UPDATE stock SET qty = 8 WHERE product_id = 1 AND warehouse = 'south'; COMMIT",
           "DELETE FROM products WHERE id = 100",
           "UPDATE products SET id = 20 WHERE id = 10",  // the key itself changes
           "TRUNCATE events",
       }) {
    src.db().exec(sql);
    bounds.push_back(current_lsn(src));
  }

  std::vector<AppliedTransaction> txns;
  SyncOptions o = options_for(src, store);
  o.on_commit = [&](const AppliedTransaction& t) {
    txns.push_back(t);
    // Called once the transaction is durable: a new reader already finds it stored.
    // (RocksDB admits one process-wide user of the store: checked after run() below.)
    if (store_kind() == "sqlite") {
      EXPECT_GT(Replica::open(store)->state().applied_lsn, t.commit_lsn);
    }
  };
  Sync(o).run();

  ASSERT_EQ(txns.size(), 5u);
  for (size_t i = 0; i < txns.size(); ++i) {
    EXPECT_GE(txns[i].commit_lsn, bounds[i]) << "transaction " << i;
    EXPECT_LT(txns[i].commit_lsn, bounds[i + 1]) << "transaction " << i;
    EXPECT_FALSE(txns[i].commit_time.empty()) << "transaction " << i;
  }
  EXPECT_GT(Replica::open(store)->state().applied_lsn, txns.back().commit_lsn);

  using Change = AppliedTransaction::Change;
  auto expect_change = [](const Change& c, const std::string& table, ChangeKind kind,
                          const std::vector<std::string>& key) {
    EXPECT_EQ(c.table, table);
    EXPECT_EQ(c.kind, kind) << c.table;
    EXPECT_EQ(c.key, key) << c.table << " " << to_string(c.kind);
  };
  ASSERT_EQ(txns[0].changes.size(), 1u);
  expect_change(txns[0].changes[0], "public.products", ChangeKind::kInsert, {"5"});
  ASSERT_EQ(txns[1].changes.size(), 2u);
  expect_change(txns[1].changes[0], "public.products", ChangeKind::kUpdate, {"2"});
  // In key order, like Replica::lookup takes it: (product_id, warehouse).
  expect_change(txns[1].changes[1], "public.stock", ChangeKind::kUpdate, {"1", "south"});
  ASSERT_EQ(txns[2].changes.size(), 1u);
  expect_change(txns[2].changes[0], "public.products", ChangeKind::kDelete, {"100"});
  ASSERT_EQ(txns[4].changes.size(), 1u);
  expect_change(txns[4].changes[0], "public.events", ChangeKind::kTruncate, {});

  // An update of the key touches two keys: a cache must drop the old one as well.
  auto touches = [&](const std::vector<std::string>& key) {
    for (const auto& c : txns[3].changes)
      if (c.table == "public.products" && c.key == key) return true;
    return false;
  };
  EXPECT_TRUE(touches({"20"}));
  EXPECT_TRUE(touches({"10"})) << "the update of products key 10 to 20 reports only the new key";

  // The keys handed to the callback look rows up as they are.
  auto replica = Replica::open(store);
  for (const auto& t : txns)
    for (const auto& c : t.changes) {
      if (c.kind == ChangeKind::kTruncate) continue;
      std::optional<Values> row;
      EXPECT_NO_THROW(row = replica->lookup(c.table, c.key)) << c.table;
      bool gone = c.kind == ChangeKind::kDelete || (c.table == "public.products" && c.key == std::vector<std::string>{"10"});
      EXPECT_EQ(row.has_value(), !gone) << c.table << " " << to_string(c.kind) << " " << c.key.at(0);
    }
  EXPECT_EQ(replica->lookup("stock", {"1", "south"}), (Values{"south", "1", "8"}));
  EXPECT_EQ(replica->count("events"), 0u);
  replica.reset();

  // Nothing new: no callback.
  txns.clear();
  Sync(o).run();
  EXPECT_TRUE(txns.empty());
}

TEST_P(LibraryTest, StopFromAnotherThreadEndsFollow) {
  TestDatabase src;
  src.db().exec(kSchema);
  std::string store = temp_store(store_kind());

  std::atomic<int> commits{0};
  std::atomic<bool> saw_stream_progress{false};
  std::atomic<bool> ended{false};
  SyncOptions o = options_for(src, store);
  o.follow = true;
  o.on_commit = [&](const AppliedTransaction&) { ++commits; };
  o.on_progress = [&](const Progress& p) {
    if (p.phase == Progress::Phase::kStream && p.applied_lsn.valid()) saw_stream_progress = true;
  };
  Sync sync(o);
  std::exception_ptr error;
  std::thread runner([&] {
    try {
      sync.run();
    } catch (...) {
      error = std::current_exception();
    }
    ended = true;
  });

  // It copies, then streams: changes made from then on arrive through the callback (one
  // made before the slot exists is in the copy instead, hence a new row each 100 ms).
  auto deadline = std::chrono::steady_clock::now() + 30s;
  for (int id = 1000; commits == 0 && !ended && std::chrono::steady_clock::now() < deadline; ++id) {
    src.db().exec("INSERT INTO products VALUES (" + std::to_string(id) + ", 'new', 6.00)");
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GT(commits.load(), 0) << "the follow run applied nothing in 30 s";
  EXPECT_TRUE(wait_until([&] { return saw_stream_progress.load(); }, 30)) << "no stream progress report";
  EXPECT_FALSE(ended.load()) << "a follow run returned before stop()";

  auto t0 = std::chrono::steady_clock::now();
  sync.stop();
  runner.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // A guard against a stop that waits for the server (its next keepalive comes after
  // wal_sender_timeout / 2 = 30 s), generous for a busy machine.
  EXPECT_LT(seconds, 8.0) << "stop() took " << seconds << " s to end run()";
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const Error& e) {
      FAIL() << "run() threw: " << e.what();
    }
  }

  // What it applied is stored and the slot is released.
  EXPECT_EQ(Replica::open(store)->count("products"),
            std::stoull(src.db().value("SELECT count(*) FROM products")));
  StatusReport report;
  for (int i = 0; i < 50; ++i) {  // the walsender goes a moment after the connection
    report = status({.source = src.conninfo(), .store = store});
    if (!report.slot_active) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(report.healthy) << (report.warnings.empty() ? "" : report.warnings[0].message);
  EXPECT_TRUE(report.slot_exists);
  EXPECT_FALSE(report.slot_active);
}

TEST_P(LibraryTest, StopDuringTheInitialCopyKeepsNothing) {
  TestDatabase src;
  src.db().exec("CREATE TABLE big (id int PRIMARY KEY, pad text);"
                "INSERT INTO big SELECT i, repeat('p', 200) FROM generate_series(1, 200000) i;");
  std::string store = temp_store(store_kind());
  SyncOptions o = options_for(src, store);
  o.follow = true;
  StoppedCopy r = stop_mid_copy(o);
  ASSERT_TRUE(r.stopped_mid_copy) << "the copy stored no batch";
  EXPECT_LT(r.seconds, 5.0) << "stop() during the copy took " << r.seconds << " s";
  EXPECT_FALSE(r.error) << "run() threw after stop() during the copy";
  // Nothing kept: no slot, no publication, no store file; a new run starts over and works.
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"), "0");
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_publication"), "0");
  EXPECT_FALSE(std::filesystem::exists(store.substr(store.find(':') + 1)));
  sync_ok(src, store);
  expect_table_equal(src, store, "public.big");
}

INSTANTIATE_TEST_SUITE_P(Stores, LibraryTest, ::testing::ValuesIn(test_support::kStoreKinds));

// Runs `fn`, expects a pgseed::Error of `category`; returns its message.
template <typename Fn>
std::string expect_error(ErrorCategory category, Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(category_name(e.category()), std::string(category_name(category))) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "not one line: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no pgseed::Error thrown";
  return "";
}

TEST(LibraryErrors, CarryTheirCategory) {
  TestDatabase src;
  src.db().exec(kSchema);
  std::string server = server_conninfo();

  SyncOptions o = options_for(src, temp_store("sqlite"));
  o.source = "host=127.0.0.1 port=1 connect_timeout=2 password=secret";
  std::string msg = expect_error(ErrorCategory::kConnection, [&] { Sync(o).run(); });
  EXPECT_EQ(msg.find("secret"), std::string::npos) << msg;

  // Roles that do not exist, may not log in, or may not replicate.
  struct Roles {
    std::string server, nologin, norepl;
    ~Roles() { Db(server).try_exec("DROP ROLE IF EXISTS " + nologin + "; DROP ROLE IF EXISTS " + norepl); }
  } roles{server, src.name() + "_nologin", src.name() + "_norepl"};
  Db(server).exec("CREATE ROLE " + roles.nologin + " NOLOGIN; CREATE ROLE " + roles.norepl + " LOGIN");
  for (const std::string& user : {std::string("no_such_role_here"), roles.nologin, roles.norepl}) {
    SCOPED_TRACE("user " + user);
    o.source = src.conninfo() + " user=" + user;
    expect_error(ErrorCategory::kAuthentication, [&] { Sync(o).run(); });
  }

  // An empty source means libpq's defaults (as psql); a malformed one is a configuration error.
  o.source = "dbname='unterminated";
  expect_error(ErrorCategory::kConfiguration, [&] { Sync(o).run(); });

  o = options_for(src, "nosuchscheme:/tmp/x");
  expect_error(ErrorCategory::kConfiguration, [&] { Sync(o).run(); });

  // A table that is not there: nothing is left behind on the source.
  o = options_for(src, temp_store("sqlite"));
  o.tables = {"public.products", "public.no_such_table"};
  o.all_tables = false;
  expect_error(ErrorCategory::kConfiguration, [&] { Sync(o).run(); });
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"), "0");
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_publication"), "0");

  o = options_for(src, temp_store("sqlite"));
  o.publication = "no_such_publication";
  o.all_tables = false;
  expect_error(ErrorCategory::kConfiguration, [&] { Sync(o).run(); });

  // The slot of one store, asked for by another: source state.
  std::string first = temp_store("sqlite");
  Sync(options_for(src, first)).run();
  o = options_for(src, temp_store("sqlite"));
  o.slot = Replica::open(first)->state().slot;
  expect_error(ErrorCategory::kSourceState, [&] { Sync(o).run(); });

  // A store made from another database.
  TestDatabase other;
  o = options_for(other, first);
  expect_error(ErrorCategory::kStore, [&] { Sync(o).run(); });

  expect_error(ErrorCategory::kStore, [&] { Replica::open("sqlite:/nonexistent-dir/replica.db"); });
  expect_error(ErrorCategory::kConfiguration, [&] { parse_table_list(" , "); });
  expect_error(ErrorCategory::kDecode, [&] { Lsn::parse("16-B374D848"); });
}

TEST(LibraryTables, ParseTableList) {
  EXPECT_EQ(parse_table_list("a, public.\"B,c\""),
            (std::vector<std::string>{"public.a", "public.\"B,c\""}));
  EXPECT_EQ(parse_table_list("Sales.Orders"), (std::vector<std::string>{"sales.orders"}));
}

}  // namespace
}  // namespace pgseed::test
