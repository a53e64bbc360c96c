// How the SQLite store holds numeric, timestamptz and ±Infinity (sqlite_values.h): the pure
// rules, then a store in format 2 and a format-1 store made by hand (as pgseed 1 wrote it)
// read exactly, looked up by a numeric key, and upgraded in place by its writer.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "pgseed/error.h"
#include "store/sqlite_store.h"
#include "store/sqlite_values.h"
#include "model/value_codec.h"
#include "unit/store_test_support.h"

namespace pgseed {
namespace {


int32_t numeric_typmod(int precision, int scale) {
  return ((precision << 16) | (scale & 0x7ff)) + 4;
}

TEST(SqliteValues, NumericScaleFromTypeModifier) {
  EXPECT_EQ(numeric_real_scale(kNumericOid, numeric_typmod(12, 2)), 2);
  EXPECT_EQ(numeric_real_scale(kNumericOid, numeric_typmod(15, 15)), 15);
  EXPECT_EQ(numeric_real_scale(kNumericOid, numeric_typmod(1, 0)), 0);
  EXPECT_EQ(numeric_real_scale(kNumericOid, numeric_typmod(16, 2)), std::nullopt);
  EXPECT_EQ(numeric_real_scale(kNumericOid, numeric_typmod(3, 5)), std::nullopt);   // s > p
  EXPECT_EQ(numeric_real_scale(kNumericOid, numeric_typmod(5, -2)), std::nullopt);  // PG 15
  EXPECT_EQ(numeric_real_scale(kNumericOid, -1), std::nullopt);                     // unconstrained
  EXPECT_EQ(numeric_real_scale(kInt4Oid, numeric_typmod(12, 2)), std::nullopt);
}

TEST(SqliteValues, ScaledNumericPrintsItsTextBack) {
  for (const char* t : {"995.67", "1000.50", "12345.00", "-0.01", "0.00", "9999999999.99",
                        "-9999999999.99", "0.10", "1234567890123.45"}) {
    auto v = parse_scaled_numeric(t, 2);
    ASSERT_TRUE(v) << t;
    std::string back;
    append_scaled_numeric(back, *v, 2);
    EXPECT_EQ(back, t);
  }
  EXPECT_EQ(parse_scaled_numeric("999999999999999", 0), 999999999999999.0);
  EXPECT_EQ(parse_scaled_numeric("0.123456789012345", 15), 0.123456789012345);
  for (const char* t :
       {"NaN", "Infinity", "-Infinity", "", "1e3", "1.5", "1.500", " 1.50", "+1.50"})
    EXPECT_EQ(parse_scaled_numeric(t, 2), std::nullopt) << t;
  std::string s;
  append_scaled_numeric(s, -0.0, 2);
  append_scaled_numeric(s, -0.001, 2);
  EXPECT_EQ(s, "0.000.00");
}

// parse_scaled_numeric takes most texts without printing them back (prints_back_surely):
// it must answer exactly as printing back does, on texts near every edge of that rule
// (15 and 16 digits, leading zeros, negative zeros, a decimal too many or too few).
TEST(SqliteValues, ScaledNumericAnswersAsPrintingBackDoes) {
  std::mt19937_64 rng(20261206);
  auto digits = [&](size_t n, bool zeros) {
    std::string d;
    for (size_t i = 0; i < n; ++i) d += char('0' + (zeros ? 0 : rng() % 10));
    return d;
  };
  size_t taken = 0;
  for (int n = 0; n < 300000; ++n) {
    int scale = int(rng() % 16);
    bool zeros = rng() % 8 == 0;
    std::string t = rng() % 3 == 0 ? "-" : "";
    t += digits(1 + rng() % 17, zeros);
    int frac = scale + int(rng() % 8 == 0 ? rng() % 3 : 1) - 1;  // mostly `scale`
    if (frac > 0 || (frac == 0 && rng() % 8 == 0)) t += "." + digits(size_t(frac), zeros);
    std::string expected_back;
    std::optional<double> v = parse_scaled_numeric(t, scale);
    double d = 0;
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), d, std::chars_format::fixed);
    bool prints_back = false;
    if (ec == std::errc() && ptr == t.data() + t.size()) {
      append_scaled_numeric(expected_back, d, scale);
      prints_back = expected_back == t;
    }
    ASSERT_EQ(v.has_value(), prints_back) << t << " scale " << scale;
    if (v) {
      ASSERT_EQ(*v, d) << t;
      ++taken;
    }
  }
  EXPECT_GT(taken, 100000u);  // the rule's inside is covered, not only its edges
}

TEST(SqliteValues, UtcSuffixOnlyOnPlainTimestamps) {
  EXPECT_EQ(strip_utc_suffix("2026-01-02 03:04:05+00"), "2026-01-02 03:04:05");
  EXPECT_EQ(strip_utc_suffix("2026-01-02 03:04:05.123456+00"), "2026-01-02 03:04:05.123456");
  for (const char* t :
       {"infinity", "-infinity", "0044-03-15 12:00:00+00 BC", "10000-01-01 00:00:00+00",
        "2026-01-02 03:04:05+01", "2026-01-02 03:04:05", "2026-01-02 03:04:05.+00",
        "2026-01-02T03:04:05+00", "2026-01-02 03:04:05+0030"})
    EXPECT_EQ(strip_utc_suffix(t), std::nullopt) << t;
  EXPECT_TRUE(lacks_utc_suffix("2026-01-02 03:04:05"));
  EXPECT_TRUE(lacks_utc_suffix("2026-01-02 03:04:05.5"));
  for (const char* t : {"2026-01-02 03:04:05+00", "infinity", "0044-03-15 12:00:00+00 BC",
                        "2026-01-02 03:04:05.", "2026-01-02"})
    EXPECT_FALSE(lacks_utc_suffix(t)) << t;
}

ColumnDef column(const std::string& name, uint32_t oid, int32_t type_mod, int key_position = 0) {
  ColumnDef c;
  c.name = name;
  c.type_oid = c.base_type_oid = oid;
  c.type_name = name;
  c.storage = storage_class_for_type(oid);
  c.type_mod = type_mod;
  c.key_position = key_position;
  c.attnum = key_position + 1;
  return c;
}

TEST(SqliteValues, WhatEachFormatStores) {
  ColumnDef total = column("total", kNumericOid, numeric_typmod(12, 2));
  ColumnDef at = column("at", kTimestamptzOid, -1);
  ColumnDef f8 = column("f8", kFloat8Oid, -1);
  ColumnDef n = column("n", kNumericOid, -1);
  SqliteValue v = sqlite_value(total, "995.67", kSqliteFormatNative);
  EXPECT_TRUE(v.is_real);
  EXPECT_EQ(v.real, 995.67);
  EXPECT_FALSE(sqlite_value(total, "NaN", kSqliteFormatNative).is_real);
  EXPECT_FALSE(sqlite_value(total, "995.67", kSqliteFormatText).is_real);
  EXPECT_FALSE(sqlite_value(n, "995.67", kSqliteFormatNative).is_real);
  EXPECT_EQ(sqlite_value(at, "2026-01-02 03:04:05+00", kSqliteFormatNative).text,
            "2026-01-02 03:04:05");
  EXPECT_EQ(sqlite_value(at, "2026-01-02 03:04:05+00", kSqliteFormatText).text,
            "2026-01-02 03:04:05+00");
  EXPECT_EQ(sqlite_value(f8, "Infinity", kSqliteFormatNative).real, HUGE_VAL);
  EXPECT_EQ(sqlite_value(f8, "-Infinity", kSqliteFormatNative).real, -HUGE_VAL);
  EXPECT_FALSE(sqlite_value(f8, "Infinity", kSqliteFormatText).is_real);
  EXPECT_FALSE(sqlite_value(f8, "NaN", kSqliteFormatNative).is_real);
  EXPECT_FALSE(sqlite_value(f8, "-0", kSqliteFormatNative).is_real);
}

// --- The store ---------------------------------------------------------------------------

using test_support::TempDir;

// Runs `sql` on the file; each row's columns joined by '|', rows by '\n'.
std::string sql(const std::string& path, const std::string& query) {
  sqlite3* db = nullptr;
  std::string out;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  const char* tail = query.c_str();
  while (*tail) {
    if (sqlite3_prepare_v2(db, tail, -1, &st, &tail) != SQLITE_OK) {
      ADD_FAILURE() << sqlite3_errmsg(db) << " in " << query;
      break;
    }
    if (!st) break;
    while (sqlite3_step(st) == SQLITE_ROW) {
      if (!out.empty()) out += '\n';
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* t = sqlite3_column_text(st, i);
        out += (i ? "|" : "") + std::string(t ? reinterpret_cast<const char*>(t) : "<null>");
      }
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

TableDef orders() {
  TableDef d;
  d.source_oid = 100;
  d.schema = "public";
  d.name = "orders";
  d.columns = {column("total", kNumericOid, numeric_typmod(12, 2), 1),
               column("at", kTimestamptzOid, -1), column("f8", kFloat8Oid, -1),
               column("n", kNumericOid, -1)};
  return d;
}

// The rows, as PostgreSQL prints them (total is the key).
const std::vector<std::vector<std::string>> kRows = {
    {"995.67", "2025-12-31 23:59:59.999999+00", "Infinity", "1.5"},
    {"1000.50", "2026-01-01 00:00:00+00", "-Infinity", "NaN"},
    {"12345.00", "infinity", "NaN", "-0.000001"},
    {"-0.01", "-infinity", "-0", "12345678901234567890.5"},
    {"NaN", "0044-03-15 12:00:00+00 BC", "0.1", "Infinity"},
};

std::vector<std::string> scanned(Store& s) {
  std::vector<std::string> out;
  s.scan(s.tables().at(0), [&](const Row& r) {
    std::string line;
    for (const auto& d : r)
      line += (line.empty() ? "" : ",") + (d.is_null() ? "<null>" : std::string(d.text));
    out.push_back(line);
  });
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> want_rows() {
  std::vector<std::string> out;
  for (const auto& r : kRows) out.push_back(r[0] + "," + r[1] + "," + r[2] + "," + r[3]);
  std::sort(out.begin(), out.end());
  return out;
}

void fill(Store& s) {
  s.begin();
  TableDef t = orders();
  s.create_table(t);
  for (const auto& r : kRows) {
    std::vector<Datum> row;
    for (const auto& v : r) row.push_back(Datum::of(v));
    s.upsert(t, row);
  }
  s.commit();
}

// Every key is found, with its row's text.
void expect_lookups(Store& s) {
  TableDef t = s.tables().at(0);
  for (const auto& r : kRows) {
    bool found = s.lookup(t, std::span<const std::string>(&r[0], 1), [&](const Row& row) {
      EXPECT_EQ(std::string(row[1].text), r[1]) << r[0];
    });
    EXPECT_TRUE(found) << r[0];
  }
}

// What plain SQL answers on a format-2 file, as PostgreSQL answers on these rows.
void expect_sql_answers(const std::string& path) {
  EXPECT_EQ(sql(path, "SELECT count(*) FROM orders WHERE total > 1000"), "3");  // NaN is greatest
  EXPECT_EQ(
      sql(path,
          "SELECT group_concat(typeof(total)) FROM (SELECT total FROM orders ORDER BY total DESC)"),
      "text,real,real,real,real");
  EXPECT_EQ(sql(path,
                "SELECT group_concat(total, ' ') FROM (SELECT total FROM orders WHERE "
                "typeof(total) = 'real' "
                "ORDER BY total DESC)"),
            "12345.0 1000.5 995.67 -0.01");
  EXPECT_EQ(sql(path, "SELECT datetime(at), date(at) FROM orders WHERE total = 1000.5"),
            "2026-01-01 00:00:00|2026-01-01");
  EXPECT_EQ(sql(path, "SELECT count(*) FROM orders WHERE at >= '2026-01-01'"), "2");  // + infinity
  EXPECT_EQ(
      sql(path, "SELECT group_concat(typeof(f8)) FROM (SELECT f8 FROM orders ORDER BY total)"),
      "text,real,real,text,real");  // -0.01:-0, 995.67:Inf, 1000.50:-Inf, 12345:NaN, NaN:0.1
}

TEST(SqliteValues, StoreHoldsNumbersAndReadsTextsBack) {
  TempDir tmp;
  const std::string path = tmp.sub("store.db");
  {
    auto s = open_sqlite_store(path, false);
    fill(*s);
    EXPECT_EQ(scanned(*s), want_rows());
    expect_lookups(*s);
  }
  EXPECT_EQ(sql(path, "SELECT value FROM _pgseed_state WHERE key = 'format'"), "pgseed-sqlite-2");
  EXPECT_EQ(sql(path, "SELECT type FROM pragma_table_info('orders') ORDER BY cid"),
            "REAL\nTEXT\n\nTEXT");
  expect_sql_answers(path);
}

// Turns a format-2 store file into what pgseed's format 1 wrote: numeric and timestamptz
// columns TEXT with PostgreSQL's text, ±Infinity the text 'Infinity'.
void make_format1(const std::string& path) {
  sql(path, R"SQL(
    CREATE TABLE old_orders (total TEXT NOT NULL, at TEXT, f8, n TEXT, PRIMARY KEY (total));
    INSERT INTO old_orders SELECT
      CASE typeof(total) WHEN 'real' THEN printf('%.2f', total) ELSE total END,
      CASE WHEN at GLOB '[0-9][0-9][0-9][0-9]-*' AND at NOT GLOB '*BC' THEN at || '+00' ELSE at END,
      CASE WHEN f8 = 9e999 THEN 'Infinity' WHEN f8 = -9e999 THEN '-Infinity' ELSE f8 END, n
    FROM orders;
    DROP TABLE orders;
    ALTER TABLE old_orders RENAME TO orders;
    UPDATE _pgseed_state SET value = 'pgseed-sqlite-1' WHERE key = 'format';
  )SQL");
}

TEST(SqliteValues, Format1StoreReadsAsItIsAndIsUpgradedByItsWriter) {
  TempDir tmp;
  const std::string path = tmp.sub("store.db");
  {
    auto s = open_sqlite_store(path, false);
    fill(*s);
  }
  make_format1(path);
  ASSERT_EQ(
      sql(path,
          "SELECT group_concat(typeof(total) || ':' || total || ':' || at || ':' || f8, ' ') FROM "
          "(SELECT * FROM orders WHERE total IN ('1000.50', '12345.00') ORDER BY total)"),
      "text:1000.50:2026-01-01 00:00:00+00:-Infinity text:12345.00:infinity:NaN");
  // A reader takes it as it is: exact texts, lookups by the stored key text.
  {
    auto s = open_sqlite_store(path, true);
    EXPECT_EQ(scanned(*s), want_rows());
    expect_lookups(*s);
  }
  EXPECT_EQ(sql(path, "SELECT value FROM _pgseed_state WHERE key = 'format'"), "pgseed-sqlite-1");
  // Its writer upgrades it, once, with one line.
  std::vector<std::string> lines;
  {
    auto s = open_sqlite_store(path, true);
    s->claim_writer([&](LogLevel, std::string_view m) { lines.emplace_back(m); });
    EXPECT_EQ(scanned(*s), want_rows());
    expect_lookups(*s);
    // And writes format 2 from then on: an update by key finds the row.
    TableDef t = s->tables().at(0);
    s->begin();
    std::vector<Datum> row = {Datum::of("995.67"), Datum::of("2026-06-01 12:00:00+00"),
                              Datum::of("Infinity"), Datum::of("1.5")};
    s->update(t, {}, row);
    s->commit();
    EXPECT_EQ(s->count(t), kRows.size());
  }
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("upgraded from format pgseed-sqlite-1 to pgseed-sqlite-2"),
            std::string::npos)
      << lines[0];
  EXPECT_EQ(sql(path, "SELECT value FROM _pgseed_state WHERE key = 'format'"), "pgseed-sqlite-2");
  EXPECT_EQ(sql(path, "SELECT sqlite_name FROM _pgseed_tables"), "orders");
  EXPECT_EQ(sql(path, "SELECT type FROM pragma_table_info('orders') ORDER BY cid"),
            "REAL\nTEXT\n\nTEXT");
  EXPECT_EQ(sql(path, "SELECT count(*) FROM sqlite_master WHERE name LIKE '_pgseed_rebuild%'"),
            "0");
  EXPECT_EQ(sql(path, "SELECT at FROM orders WHERE total = 995.67"), "2026-06-01 12:00:00");
  sql(path, "UPDATE orders SET at = '2025-12-31 23:59:59.999999' WHERE total = 995.67");
  expect_sql_answers(path);
  {
    lines.clear();
    auto s = open_sqlite_store(path, true);
    s->claim_writer([&](LogLevel, std::string_view m) { lines.emplace_back(m); });
    EXPECT_TRUE(lines.empty());  // once only
    EXPECT_EQ(scanned(*s), want_rows());
    expect_lookups(*s);
  }
}

TEST(SqliteValues, NewerFormatIsRefused) {
  TempDir tmp;
  const std::string path = tmp.sub("store.db");
  { open_sqlite_store(path, false); }
  sql(path, "UPDATE _pgseed_state SET value = 'pgseed-sqlite-3' WHERE key = 'format'");
  try {
    open_sqlite_store(path, true);
    ADD_FAILURE() << "opened";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has format 'pgseed-sqlite-3', this pgseed reads "
                                         "'pgseed-sqlite-1' and 'pgseed-sqlite-2'"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace pgseed
