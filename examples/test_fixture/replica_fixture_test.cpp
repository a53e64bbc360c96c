// Two tests in the style the fixture is for: one reads the replica with plain SQL (sqlite3),
// one changes the source as the code under test would, catches up and reads the result
// with pgseed::Replica.
#include <sqlite3.h>

#include <memory>
#include <optional>
#include <string>

#include <pgseed/replica.h>

#include "replica_fixture.h"

namespace {

// The first column of the first row of `sql` on the replica file ("" when no row).
std::string replica_value(const std::string& path, const std::string& sql) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
  if (rc != SQLITE_OK) throw std::runtime_error(sqlite3_errmsg(raw));
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
    throw std::runtime_error(sqlite3_errmsg(db.get()));
  std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(st, &sqlite3_finalize);
  if (sqlite3_step(st) != SQLITE_ROW) return "";
  const unsigned char* text = sqlite3_column_text(st, 0);
  return text ? reinterpret_cast<const char*>(text) : "";
}

}  // namespace

// The replica is an ordinary SQLite file: tables of schema public keep their names;
// numeric(12,2) is a REAL there (SQL compares it as a number; format it with printf), and
// pgseed's own reads (lookup below) give PostgreSQL's text, two decimals included.
TEST_F(ReplicaTest, ReadsTheReplicaWithSqlite) {
  EXPECT_EQ(replica_value(store_path(), "SELECT owner FROM accounts WHERE id = 2"), "bob");
  EXPECT_EQ(replica_value(store_path(), "SELECT printf('%.2f', balance) FROM accounts WHERE id = 2"),
            "250.50");
  EXPECT_EQ(replica_value(store_path(), "SELECT count(*) FROM accounts WHERE balance > 100"),
            source_query("SELECT count(*) FROM accounts WHERE balance > 100"));
  EXPECT_EQ(replica_value(store_path(), "SELECT count(*) FROM accounts"),
            source_query("SELECT count(*) FROM accounts"));
}

// A change on the source (here made by the test; in real life by the code under test) is
// in the replica after catch_up(), with the values PostgreSQL stored.
TEST_F(ReplicaTest, SeesTheSourceChangeAfterCatchUp) {
  std::string id = source_query(
      "INSERT INTO transfers (from_account, to_account, amount) VALUES (1, 3, 12.34) RETURNING id");
  catch_up();

  auto replica = pgseed::Replica::open(store());
  std::optional<pgseed::Values> row = replica->lookup("public.transfers", {id});
  ASSERT_TRUE(row.has_value()) << "transfer " << id << " is not in the replica";
  EXPECT_EQ((*row)[1], "1");      // from_account
  EXPECT_EQ((*row)[2], "3");      // to_account
  EXPECT_EQ((*row)[3], "12.34");  // amount
  EXPECT_EQ(replica->count("public.transfers"), std::stoull(source_query("SELECT count(*) FROM transfers")));
}
