// SQLite values that plain SQL gets right (issue 13): numeric(p<=15,s) as REAL, timestamptz
// without its "+00", ±Infinity as REAL. The same queries run on PostgreSQL and on the
// SQLite file after a copy and after streamed changes, and `dump` stays equal to COPY;
// then the file is turned back into format 1 by plain SQL (as pgseed 1 wrote it), read as
// it is, and upgraded in place by the next sync.
#include <sqlite3.h>

#include <string>
#include <vector>

#include "harness.h"

namespace pgseed::test {

namespace {

std::string path_of(const std::string& store) {
  return store.substr(std::string("sqlite:").size());
}

// Runs `sql` (several statements allowed) on the file; rows' columns joined by '|', rows
// by ','.
std::string sqlite_query(const std::string& store, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path_of(store).c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << path_of(store) << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return out;
  }
  const char* tail = sql.c_str();
  while (*tail) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, tail, -1, &st, &tail) != SQLITE_OK) {
      ADD_FAILURE() << "sqlite: " << sqlite3_errmsg(db) << " in " << sql;
      break;
    }
    if (!st) break;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      if (!out.empty()) out += ',';
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* t = sqlite3_column_text(st, i);
        out += (i ? "|" : "") + std::string(t ? reinterpret_cast<const char*>(t) : "<null>");
      }
    }
    if (rc != SQLITE_DONE) ADD_FAILURE() << "sqlite: " << sqlite3_errmsg(db) << " in " << sql;
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

// The same answer, as one string, from PostgreSQL.
std::string pg_query(TestDatabase& src, const std::string& sql) {
  return src.db().value("SELECT coalesce(string_agg(r, ','), '') FROM (" + sql + ") q(r)");
}

// Each question asked of both, in each one's SQL; the answers must be equal.
void expect_same_answers(TestDatabase& src, const std::string& store) {
  struct Question {
    const char* what;
    std::string pg, sqlite;
  };
  // The finite AD timestamps (SQLite's date functions know years 0000-9999 only).
  std::string ad =
      pg_query(src,
               "SELECT id::text AS r FROM orders WHERE ordered_at BETWEEN '0001-01-01 00:00:00+00' "
               "AND '9999-12-31 23:59:59+00' ORDER BY id");
  ASSERT_FALSE(ad.empty());
  const std::vector<Question> questions = {
      {"total > 1000", "SELECT count(*)::text FROM orders WHERE total > 1000",
       "SELECT count(*) FROM orders WHERE total > 1000"},
      {"total > 1000 ids", "SELECT id::text AS r FROM orders WHERE total > 1000 ORDER BY id",
       "SELECT id FROM orders WHERE total > 1000 ORDER BY id"},
      {"ORDER BY total DESC",
       "SELECT id::text AS r FROM orders WHERE total IS NOT NULL ORDER BY total DESC, id",
       "SELECT id FROM orders WHERE total IS NOT NULL ORDER BY total DESC, id"},
      {"sum of totals", "SELECT sum(total)::text FROM orders WHERE total <> 'NaN'",
       "SELECT printf('%.2f', sum(total)) FROM orders WHERE typeof(total) = 'real'"},
      {"ORDER BY ordered_at",
       "SELECT id::text AS r FROM orders WHERE ordered_at IS NOT NULL ORDER BY ordered_at, id",
       "SELECT id FROM orders WHERE ordered_at IS NOT NULL ORDER BY ordered_at, id"},
      {"ordered_at >= 2026-01-01",
       "SELECT id::text AS r FROM orders WHERE ordered_at >= timestamptz '2026-01-01 00:00:00+00' "
       "ORDER BY id",
       "SELECT id FROM orders WHERE ordered_at >= '2026-01-01' ORDER BY id"},
      {"ordered_at < 2026-01-01",
       "SELECT id::text AS r FROM orders WHERE ordered_at < timestamptz '2026-01-01 00:00:00+00' "
       "ORDER BY id",
       "SELECT id FROM orders WHERE ordered_at < '2026-01-01' ORDER BY id"},
      {"date(ordered_at)",
       "SELECT id || '|' || (ordered_at AT TIME ZONE 'UTC')::date FROM orders WHERE id IN (" + ad +
           ") ORDER BY id",
       "SELECT id, date(ordered_at) FROM orders WHERE id IN (" + ad + ") ORDER BY id"},
      {"datetime(ordered_at)",
       "SELECT id || '|' || to_char(ordered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM "
       "orders "
       "WHERE id IN (" +
           ad + ") ORDER BY id",
       "SELECT id, datetime(ordered_at) FROM orders WHERE id IN (" + ad + ") ORDER BY id"},
      {"timestamps by month",
       "SELECT m || '|' || count(*) FROM (SELECT to_char(ordered_at AT TIME ZONE 'UTC', 'YYYY-MM') "
       "AS m "
       "FROM orders WHERE id IN (" +
           ad + ")) x GROUP BY m ORDER BY m",
       "SELECT strftime('%Y-%m', ordered_at), count(*) FROM orders WHERE id IN (" + ad +
           ") GROUP BY 1 ORDER BY 1"},
      // timestamp and date: already PostgreSQL's answers in format 1, and still.
      {"ORDER BY local_at",
       "SELECT id::text AS r FROM orders WHERE local_at IS NOT NULL ORDER BY local_at, id",
       "SELECT id FROM orders WHERE local_at IS NOT NULL ORDER BY local_at, id"},
      {"local_at >= 2026-01-01",
       "SELECT id::text AS r FROM orders WHERE local_at >= '2026-01-01' ORDER BY id",
       "SELECT id FROM orders WHERE local_at >= '2026-01-01' ORDER BY id"},
      {"day >= 2026-01-01",
       "SELECT id::text AS r FROM orders WHERE day >= '2026-01-01' ORDER BY id",
       "SELECT id FROM orders WHERE day >= '2026-01-01' ORDER BY id"},
      {"date(local_at)",
       "SELECT id || '|' || local_at::date FROM orders WHERE id IN (" + ad + ") ORDER BY id",
       "SELECT id, date(local_at) FROM orders WHERE id IN (" + ad + ") ORDER BY id"},
      // ±Infinity are numbers now (-0 is the text '-0', left out: SQLite has no -0).
      {"ORDER BY f8",
       "SELECT id::text AS r FROM orders WHERE f8 IS NOT NULL AND f8::text <> '-0' ORDER BY f8, id",
       "SELECT id FROM orders WHERE f8 IS NOT NULL AND f8 IS NOT '-0' ORDER BY f8, id"},
      {"f8 > 1e308", "SELECT count(*)::text FROM orders WHERE f8 > 1e308 AND f8 <> 'NaN'",
       "SELECT count(*) FROM orders WHERE f8 > 1e308 AND typeof(f8) = 'real'"},
      // A numeric key and a timestamptz key.
      {"prices by price", "SELECT price || '|' || label FROM prices ORDER BY price, at",
       "SELECT printf('%.2f', price), label FROM prices ORDER BY price, at"},
      {"prices since 2026",
       "SELECT label FROM prices WHERE at >= timestamptz '2026-01-01 00:00:00+00' ORDER BY label",
       "SELECT label FROM prices WHERE at >= '2026-01-01' ORDER BY label"},
  };
  for (const auto& q : questions)
    EXPECT_EQ(sqlite_query(store, q.sqlite), pg_query(src, q.pg)) << q.what;
}

void expect_dumps_equal(TestDatabase& src, const std::string& store) {
  expect_table_equal(src, store, "public.orders");
  expect_table_equal(src, store, "public.prices");
}

// Turns a format-2 file back into what format 1 held: numeric and timestamptz columns
// TEXT with PostgreSQL's text, ±Infinity as text.
void make_format1(const std::string& store) {
  const std::string stamp = R"(CASE WHEN %1 GLOB '[0-9][0-9][0-9][0-9]-*' AND %1 NOT GLOB '*+*'
                               THEN %1 || '+00' ELSE %1 END)";
  auto with_utc = [&](const std::string& c) {
    std::string s = stamp;
    for (size_t at; (at = s.find("%1")) != std::string::npos;) s.replace(at, 2, c);
    return s;
  };
  sqlite_query(store, R"SQL(
    CREATE TABLE old_orders (id INTEGER NOT NULL, total TEXT, amount TEXT, ordered_at TEXT,
                             local_at TEXT, day TEXT, f8, PRIMARY KEY (id));
    INSERT INTO old_orders SELECT id,
      CASE typeof(total) WHEN 'real' THEN printf('%.2f', total) ELSE total END, amount,
      )SQL" + with_utc("ordered_at") +
                          R"SQL(, local_at, day,
      CASE WHEN f8 = 9e999 THEN 'Infinity' WHEN f8 = -9e999 THEN '-Infinity' ELSE f8 END
    FROM orders;
    DROP TABLE orders;
    ALTER TABLE old_orders RENAME TO orders;
    CREATE TABLE old_prices (price TEXT NOT NULL, at TEXT NOT NULL, label TEXT, PRIMARY KEY (price, at));
    INSERT INTO old_prices SELECT
      CASE typeof(price) WHEN 'real' THEN printf('%.2f', price) ELSE price END,
      )SQL" + with_utc("at") +
                          R"SQL(, label FROM prices;
    DROP TABLE prices;
    ALTER TABLE old_prices RENAME TO prices;
    UPDATE _pgseed_state SET value = 'pgseed-sqlite-1' WHERE key = 'format';
  )SQL");
}

}  // namespace

TEST(SqliteValuesTest, PlainSqlAnswersAsPostgresAndFormat1IsUpgraded) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TABLE orders (id int PRIMARY KEY, total numeric(12,2), amount numeric,
                         ordered_at timestamptz, local_at timestamp, day date, f8 float8);
    INSERT INTO orders VALUES
      (1, 995.67, 1.5, '2025-12-31 23:59:59.999999+00', '2025-12-31 23:59:59.999999', '2025-12-31', 1.5),
      (2, 1000.5, 'NaN', '2026-01-01 00:00:00+00', '2026-01-01 00:00:00', '2026-01-01', 'Infinity'),
      (3, 12345.00, 123456789012345678901234567890.123, 'infinity', 'infinity', 'infinity', '-Infinity'),
      (4, -0.01, -0.000001, '-infinity', '-infinity', '-infinity', 'NaN'),
      (5, 'NaN', 'Infinity', '0044-03-15 12:00:00+00 BC', '0044-03-15 12:00:00 BC', '0044-03-15 BC', '-0'),
      (6, 0, 0, '2026-03-01 08:30:00.5+02', '2026-03-01 06:30:00.5', '2026-03-01', 0),
      (7, 9999999999.99, -1e-20, '1999-12-31 23:00:00-05', '1999-12-31 23:00:00', '1999-12-31', -1e300),
      (8, NULL, NULL, NULL, NULL, NULL, NULL);
    CREATE TABLE prices (price numeric(10,2), at timestamptz, label text, PRIMARY KEY (price, at));
    INSERT INTO prices VALUES (9.99, '2025-06-01 00:00:00+00', 'a'), (10.00, '2026-02-01 10:00:00.25+00', 'b'),
      (-5.50, 'infinity', 'c'), (9.99, '2026-01-01 00:00:00+00', 'd');
  )SQL");
  const std::string store = temp_store("sqlite");
  sync_ok(src, store, {"--tables", "public.orders,public.prices"});
  expect_same_answers(src, store);
  expect_dumps_equal(src, store);
  EXPECT_EQ(sqlite_query(store,
                         "SELECT typeof(total), typeof(ordered_at), ordered_at, typeof(f8) FROM "
                         "orders WHERE id = 2"),
            "real|text|2026-01-01 00:00:00|real");

  // Streamed: inserts, updates (by a numeric and timestamptz key too), deletes.
  src.db().exec(R"SQL(
    INSERT INTO orders VALUES
      (9, 1000.01, 2.25, '2027-06-15 10:00:00.123456+00', '2027-06-15 10:00:00.123456', '2027-06-15', 'Infinity'),
      (10, 'NaN', NULL, '0100-01-01 00:00:00+00', '0100-01-01 00:00:00', '0100-01-01', '-Infinity');
    UPDATE orders SET total = 1000.00, ordered_at = '2026-01-01 00:00:00.000001+00' WHERE id = 1;
    UPDATE orders SET total = 'NaN', f8 = 'Infinity' WHERE id = 6;
    DELETE FROM orders WHERE id = 7;
    UPDATE prices SET label = 'a2' WHERE price = 9.99 AND at = '2025-06-01 00:00:00+00';
    UPDATE prices SET price = 11.11 WHERE price = 10.00;
    DELETE FROM prices WHERE price = -5.50 AND at = 'infinity';
    INSERT INTO prices VALUES (0.01, '2030-01-01 00:00:00+00', 'e');
  )SQL");
  sync_ok(src, store);
  expect_same_answers(src, store);
  expect_dumps_equal(src, store);
  ASSERT_EQ(sqlite_query(store, "SELECT count(*) FROM prices"), "4");

  // A format-1 store (as pgseed 1 wrote it): read as it is, then upgraded by its writer.
  make_format1(store);
  ASSERT_EQ(
      sqlite_query(store, "SELECT typeof(total), total, ordered_at, f8 FROM orders WHERE id = 2"),
      "text|1000.50|2026-01-01 00:00:00+00|Infinity");
  expect_dumps_equal(src, store);
  // The trap format 1 was: text compared as text (PostgreSQL says 6).
  EXPECT_EQ(pg_query(src, "SELECT count(*)::text FROM orders WHERE total > 1000"), "6");
  EXPECT_EQ(sqlite_query(store, "SELECT count(*) FROM orders WHERE total > 1000"), "7");
  src.db().exec(R"SQL(
    INSERT INTO orders VALUES (11, 1500.75, 3, '2026-07-04 12:00:00+00', '2026-07-04 12:00:00', '2026-07-04', 2.5);
    UPDATE orders SET total = 999.99 WHERE id = 2;
    UPDATE prices SET label = 'd2' WHERE price = 9.99 AND at = '2026-01-01 00:00:00+00';
    DELETE FROM prices WHERE price = 0.01;
  )SQL");
  RunResult r = run_pgseed({"sync", "--source", src.conninfo(), "--store", store});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("upgraded from format pgseed-sqlite-1 to pgseed-sqlite-2"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(sqlite_query(store, "SELECT value FROM _pgseed_state WHERE key = 'format'"),
            "pgseed-sqlite-2");
  EXPECT_EQ(sqlite_query(store, "SELECT group_concat(type, ' ') FROM pragma_table_info('orders')"),
            "INTEGER REAL TEXT TEXT TEXT TEXT ");
  EXPECT_EQ(sqlite_query(store, "SELECT sqlite_name FROM _pgseed_tables ORDER BY id"),
            "orders,prices");
  expect_same_answers(src, store);
  expect_dumps_equal(src, store);
  EXPECT_EQ(sqlite_query(store, "SELECT label FROM prices WHERE price = 9.99 ORDER BY at"),
            "a2,d2");
  RunResult again = run_pgseed({"sync", "--source", src.conninfo(), "--store", store});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.err.find("upgraded from format"), std::string::npos) << again.err;
}

}  // namespace pgseed::test
