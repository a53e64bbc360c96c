// The initial copy (issue #2, "Done when"): every built-in type family, awkward names,
// what a publication publishes (column lists, row filters, partitions, generated columns,
// keyless tables), the snapshot cut under a concurrent writer, and a 1M-row table.
// Each test runs on a database of its own, against both stores.
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <regex>
#include <thread>

#include "store_kinds.h"
#include "harness.h"

namespace pgseed::test {

namespace {

class CopyTest : public StoreTest {};
class LargeCopyTest : public StoreTest {};

// The store's tables as `pgseed status --format json` lists them, sorted.
std::vector<std::string> store_tables(const std::string& store) {
  RunResult r = run_pgseed({"status", "--store", store, "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> out;
  std::regex name_re("\\{\"name\":\"((?:[^\"\\\\]|\\\\.)*)\",\"rows\":");
  for (std::sregex_iterator it(r.out.begin(), r.out.end(), name_re), end; it != end; ++it) {
    std::string n = (*it)[1];
    // JSON unescape of \" and \\ (the only escapes these names need).
    std::string u;
    for (size_t i = 0; i < n.size(); ++i) {
      if (n[i] == '\\' && i + 1 < n.size()) ++i;
      u += n[i];
    }
    out.push_back(u);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Runs `sql` on the SQLite file of `store` ("sqlite:PATH"); each row's columns joined by '|'.
std::vector<std::string> sqlite_rows(const std::string& store, const std::string& sql) {
  std::string path = store.substr(std::string("sqlite:").size());
  sqlite3* db = nullptr;
  std::vector<std::string> out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << path << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return out;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "sqlite: " << sqlite3_errmsg(db) << " in " << sql;
  } else {
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        if (i) row += '|';
        const unsigned char* t = sqlite3_column_text(st, i);
        row += t ? reinterpret_cast<const char*>(t) : "<null>";
      }
      out.push_back(row);
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : "\n") + x;
  return s;
}

}  // namespace

// --- 1. Types -------------------------------------------------------------------------

TEST_P(CopyTest, EveryTypeFamilyRoundTrips) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'so "so"', 'a,b', 'new
line');
    CREATE DOMAIN posint AS int CHECK (VALUE > 0);
    CREATE DOMAIN real_dom AS float4;
    CREATE DOMAIN text_dom AS text;
    CREATE DOMAIN posint2 AS posint;  -- a domain over a domain
    CREATE TYPE pair AS (a int, b text, c numeric);

    CREATE TABLE nums (id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, o oid, n numeric,
                       nf numeric(12,3), b bool, m money, di posint, di2 posint2);
    INSERT INTO nums VALUES
      (1, -32768, -2147483648, -9223372036854775808, 0, 'NaN', 0, true, '-12.34', 1, 1),
      (2, 32767, 2147483647, 9223372036854775807, 4294967295, 1e-300, -123456789.125, false,
          '92233720368547758.07', 2147483647, 3),
      (3, 0, 0, 0, 1, 123456789012345678901234567890.123456789, 0.001, true, 0, 5, 5),
      (4, -1, -1, -1, 12345, -0.000000000000000000001, 1, false, '-92233720368547758.08', 7, 7),
      (5, 1, 1, 1, 2, 'Infinity', -0.5, NULL, NULL, NULL, NULL),
      (6, 2, 2, 2, 3, '-Infinity', NULL, true, NULL, NULL, NULL),
      (7, 3, 3, 3, 4, -123.4500, NULL, NULL, NULL, NULL, NULL),
      (8, 4, 4, 4, 5, 1e300, NULL, NULL, NULL, NULL, NULL),
      (9, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

    CREATE TABLE floats (id int PRIMARY KEY, f4 float4, f8 float8, fd real_dom);
    INSERT INTO floats VALUES
      (1, 'NaN', 'NaN', 'NaN'),
      (2, 'Infinity', 'Infinity', 'Infinity'),
      (3, '-Infinity', '-Infinity', '-Infinity'),
      (4, '-0', '-0', '-0'),
      (5, '1e-45', '5e-324', '1e-45'),
      (6, '3.4028235e38', '1.7976931348623157e308', '-3.4028235e38'),
      (7, '0.1', '0.1', '0.1'),
      (8, '1e15', '1e15', '1e6'),
      (9, '1e16', '1e16', '123456'),
      (10, '1.5e-5', '1.5e-5', '1.5e-5'),
      (11, '7.038531e-26', '2.2250738585072014e-308', '0.0001'),
      (12, '0', '0', '0'),
      (13, '-1.1754944e-38', '-4.9406564584124654e-324', '16777217'),
      (14, '3.1415927', '3.141592653589793', '1e-4'),
      (15, '100000', '123456789012345.6', '999999'),
      (16, '1.17549435e-38', '0.30000000000000004', '-1'),
      (17, NULL, NULL, NULL);

    CREATE TABLE bytes (id int PRIMARY KEY, b bytea);
    INSERT INTO bytes VALUES (1, '\x00'), (2, '\x'), (3, '\x00ff00deadbeef00'), (4, NULL),
      (5, convert_to('héllo', 'UTF8')), (6, decode(repeat('00ff', 50000), 'hex')),
      (7, '\x5c2e'), (8, '\x0a0d2c22');

    CREATE TABLE texts (id int PRIMARY KEY, t text, vc varchar(20), c char(5), nm name,
                        u uuid, td text_dom);
    INSERT INTO texts VALUES
      (1, E'line1\nline2', 'a', 'ab', 'name', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', E'x\ny'),
      (2, E'cr\rlf\r\n', 'b,c', 'abcde', 'Mixed Case', '00000000-0000-0000-0000-000000000000', ''),
      (3, E'tab\there', 'quote"q', '', '', 'ffffffff-ffff-ffff-ffff-ffffffffffff', NULL),
      (4, 'double "quotes" and ''single''', ' lead', ' ', 'x', NULL, 'a'),
      (5, 'comma, separated', 'trail ', 'é', NULL, NULL, '\N'),
      (6, 'back\slash', '\.', NULL, NULL, NULL, '\.'),
      (7, '\.', NULL, NULL, NULL, NULL, NULL),
      (8, '\N', '\N', '\N', '\N', NULL, NULL),
      (9, '', '', '', NULL, NULL, NULL),
      (10, NULL, NULL, NULL, NULL, NULL, NULL),
      (11, 'héllo wörld 日本語 🎉👍🏽', '🎉', '日本', 'ünï', NULL, '🎉'),
      (12, E'\x01\x1f control \x7f', NULL, NULL, NULL, NULL, NULL),
      (13, 'NULL', 'NULL', 'NULL', 'NULL', NULL, 'NULL'),
      (14, repeat('long text, "quoted" ', 20000), NULL, NULL, NULL, NULL, NULL),
      (15, '"', ',', '"', '"', NULL, '""');

    CREATE TABLE single (t text PRIMARY KEY);
    INSERT INTO single VALUES ('\.'), ('\N'), (''), ('a"b'), (E'x\ny'), ('plain'), (' ');

    CREATE TABLE times (id int PRIMARY KEY, d date, t time, ttz timetz, ts timestamp,
                        tstz timestamptz, iv interval, ts0 timestamp(0), tstz3 timestamptz(3));
    INSERT INTO times VALUES
      (1, 'infinity', '00:00', '00:00+00', 'infinity', 'infinity', '0', 'infinity', 'infinity'),
      (2, '-infinity', '24:00:00', '24:00:00-15:59', '-infinity', '-infinity', '-178000000 years',
          '-infinity', '-infinity'),
      (3, '4713-01-01 BC', '23:59:59.999999', '12:34:56.789+05:30', '4713-01-01 00:00:00 BC',
          '4713-01-01 00:00:00+00 BC', '1 year 2 mons -3 days 04:05:06.789',
          '0044-03-15 12:00:00 BC', '0001-01-01 00:00:00.123+00 BC'),
      (4, '2000-02-29', '12:00:00.5', '12:00-08', '2000-02-29 12:34:56.123456',
          '2000-02-29 23:59:59.999999-12', '-1 days +02:03:00', '2000-02-29 12:34:56.7',
          '2000-02-29 12:34:56.7891+02'),
      (5, '5874897-12-31', '01:02:03', '01:02:03+14:59', '294276-12-31 23:59:59.999999',
          '294276-12-31 23:59:59.999999+00', '178000000 years', '1999-12-31 23:59:59',
          '2024-03-10 02:30:00 America/New_York'),
      (6, '0001-01-01', '00:00:00.000001', '23:59:59.999999-00:00:01', '1970-01-01 00:00:00',
          '1970-01-01 00:00:00+00', '1 microsecond', '1970-01-01', '1970-01-01'),
      (7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

    CREATE TABLE misc (id int PRIMARY KEY, j json, jb jsonb, x xml, ip inet, cn cidr,
                       mac macaddr, mac8 macaddr8, b bit(4), vb varbit, pt point, bx box,
                       pg polygon, ci circle, ln line, ls lseg, pa path, tv tsvector,
                       tq tsquery, lsn pg_lsn, md mood, cp pair);
    INSERT INTO misc VALUES
      (1, '{"a": [1, 2.50, "x\"y"],  "b" : null}', '{"b": null, "a": [1, 2.50, "é"], "e": "🎉"}',
          '<a b="c">t &amp; u</a>', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
          '08:00:2b:01:02:03:04:05', B'1010', B'', '(1.5,-2)', '((0,0),(1,1))',
          '((0,0),(1,0),(1,1))', '<(0,0),5>', '{1,-1,0}', '[(0,0),(1,1)]',
          '[(0,0),(1,1),(2,0)]', 'a fat:2 cat:1A sat ''it''''s''', 'fat & (rat | !cat)',
          '16/B374D848', 'happy', ROW(1, 'x,"y"', 1.50)),
      (2, 'null', '[]', 'plain text, content', '::1', '::ffff:1.2.3.4/128', 'ff:ff:ff:ff:ff:ff',
          '00:00:00:00:00:00:00:00', B'0000', B'1', '(-0,1e300)', '((-1,-1),(1e-10,2))',
          '((0,0))', '<(1,1),0>', '{0,1,-5}', '[(1,2),(3,4)]', '((0,0),(1,1))', '', '!a',
          '0/0', 'so "so"', ROW(NULL, NULL, NULL)),
      (3, '"str"', '"\u00e9"', '<?xml version="1.0"?><r/>', '2001:db8::1/64', '2001:db8::/32',
          '01:23:45:67:89:ab', '01:23:45:67:89:ab:cd:ef', B'1111', B'101010101010101010101',
          '(NaN,Infinity)', '((1,1),(1,1))', '((1,2),(3,4),(5,6),(7,8))', '<(0,0),1e-5>',
          '{1,0,0}', '[(0,0),(0,0)]', '[(1,1)]', 'éé:1 ü', 'a:* & b:AB', 'FFFFFFFF/FFFFFFFF',
          'a,b', ROW(-1, '', NULL)),
      (4, '123.4500', '123.4500', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, E'new\nline', ROW(0, E'a\nb\\c', 'NaN')),
      (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
          NULL, NULL, NULL, NULL, NULL, NULL, NULL);

    CREATE TABLE ranges (id int PRIMARY KEY, r4 int4range, r8 int8range, nr numrange,
                         dr daterange, tsr tsrange, tstzr tstzrange, m4 int4multirange,
                         mdr datemultirange, mnr nummultirange, mtz tstzmultirange);
    INSERT INTO ranges VALUES
      (1, 'empty', '(,)', '(1.50,2.5]', '[2000-01-01,infinity)',
          '["2000-01-01 00:00","2000-01-02 00:00")', '[2000-01-01 00:00+05,)',
          '{[1,3),[5,7)}', '{}', '{[1.5,2.5]}', '{[2000-01-01 00:00+00,2000-01-02 00:00+00)}'),
      (2, '[1,5)', '[-9223372036854775808,9223372036854775807)', 'empty', '[,2000-01-01)',
          '(,)', 'empty', '{}', '{[2000-01-01,2000-02-01),[2001-01-01,)}', '{(,)}', '{}'),
      (3, '(0,1]', '[0,0]', '[-1e-30,1e30]', 'empty', 'empty', '(,2000-01-01 00:00+00]',
          '{[1,2),[2,3)}', '{[2000-01-01,2000-01-05]}', '{}', '{(,)}'),
      (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

    CREATE TABLE arrays (id int PRIMARY KEY, ia int[], ia2 int[][], ta text[], na numeric[],
                         ba bool[], ma mood[], ja jsonb[], pa pair[], fa float8[], f4a float4[],
                         da date[], bya bytea[], ua uuid[], ra int4range[]);
    INSERT INTO arrays VALUES
      (1, '{1,2,3}', '{{1,2},{3,4}}',
          ARRAY['a"b', NULL, 'c,d', '', 'NULL', 'back\slash', E'new\nline', ' sp ', '{}', 'é🎉'],
          '{1.5,NaN,-3,1e-20,Infinity}', '{t,f,NULL}', '{happy,"so \"so\"","a,b"}',
          ARRAY['{"a":1}'::jsonb, '"x"'::jsonb, NULL], ARRAY[ROW(1,'x,y',2)::pair, NULL],
          '{NaN,Infinity,-Infinity,-0,0.1,5e-324}', '{1e-45,3.4028235e38,0.1}',
          '{infinity,2000-01-01,"4713-01-01 BC"}', '{"\\x00ff",NULL,"\\x"}',
          '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '{"[1,2)",empty}'),
      (2, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
      (3, '[0:2]={7,8,9}', '[1:1][-1:0]={{1,2}}', '{NULL}', '{NULL,1}', '{NULL}', '{NULL}',
          '{NULL}', '{"(,,)"}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}'),
      (4, '{{{1}},{{2}}}', '{{NULL,NULL}}', '{"\"","\\",","}', '{-0.000}', '{t}', '{sad}',
          '{"[]"}', '{"(1,\"a\"\"b\",)"}', '{1e16,1e15}', '{-0,NaN}', '{-infinity}', '{"\\x5c"}',
          '{}', '{"(,)"}'),
      (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

    -- Key columns of many types (the RocksDB key encoding), with values that print in
    -- more than one way or sort oddly.
    CREATE TABLE keyed (t text, n numeric, f float8, f4 float4, b bytea, d date, u uuid,
                        ts timestamptz, bo bool, md mood,
                        PRIMARY KEY (t, n, f, f4, b, d, u, ts, bo, md));
    INSERT INTO keyed VALUES
      ('', 0, 'NaN', 'NaN', '\x', '-infinity', '00000000-0000-0000-0000-000000000000',
           '-infinity', false, 'sad'),
      ('a', 'NaN', 'Infinity', '-Infinity', '\x00', 'infinity', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
           'infinity', true, 'happy'),
      ('a', 1.50, '-0', '-0', '\x00ff', '4713-01-01 BC', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
           '2000-01-01 00:00+00', true, 'a,b'),
      ('é🎉', -1e-300, 5e-324, 1e-45, '\xff', '2000-02-29', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12',
           '4713-01-01 00:00+00 BC', false, 'so "so"'),
      (E'x\ny', 123456789012345678901234567890.1, 0.1, 0.1, '\x0000', '0001-01-01',
           '10000000-0000-0000-0000-000000000000', '2000-01-01 00:00:00.000001+00', true, 'ok');
  )SQL");

  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  for (const char* t : {"public.nums", "public.floats", "public.bytes", "public.texts",
                        "public.single", "public.times", "public.misc", "public.ranges",
                        "public.arrays", "public.keyed"})
    expect_table_equal(src, store, t);

  if (store_kind() != "sqlite") return;
  // Native SQLite types: integers INTEGER, floats REAL (±Infinity too) unless SQLite cannot
  // hold them (NaN, -0), bool 0/1, bytea BLOB, numeric(p<=15,s) REAL, everything else TEXT.
  EXPECT_EQ(joined(sqlite_rows(store,
                               "SELECT id, typeof(i2), typeof(i4), typeof(i8), typeof(o), "
                               "typeof(n), typeof(b), b, typeof(m), typeof(di), typeof(di2) "
                               "FROM nums WHERE id IN (1, 2, 9) ORDER BY id")),
            "1|integer|integer|integer|integer|text|integer|1|text|integer|integer\n"
            "2|integer|integer|integer|integer|text|integer|0|text|integer|integer\n"
            "9|null|null|null|null|null|null|<null>|null|null|null");
  EXPECT_EQ(joined(sqlite_rows(store, "SELECT i8, o FROM nums WHERE id = 2")),
            "9223372036854775807|4294967295");
  for (const auto& row : sqlite_rows(store,
                                     "SELECT id, typeof(f4), typeof(f8), typeof(fd) FROM floats "
                                     "ORDER BY id")) {
    int id = std::stoi(row);
    std::string want = id == 1 || id == 4 ? "text" : id == 17 ? "null" : "real";
    EXPECT_EQ(row, std::to_string(id) + "|" + want + "|" + want + "|" + want);
  }
  EXPECT_EQ(joined(sqlite_rows(store, "SELECT f4, f8 FROM floats WHERE id IN (7, 12) ORDER BY id")),
            "0.1|0.1\n0.0|0.0");
  EXPECT_EQ(joined(sqlite_rows(store, "SELECT id, typeof(b), length(b) FROM bytes ORDER BY id")),
            "1|blob|1\n2|blob|0\n3|blob|8\n4|null|<null>\n5|blob|6\n6|blob|100000\n7|blob|2\n"
            "8|blob|4");
  EXPECT_EQ(joined(sqlite_rows(store, "SELECT count(*) FROM texts WHERE typeof(t) NOT IN "
                                      "('text', 'null') OR typeof(u) NOT IN ('text', 'null')")),
            "0");
  EXPECT_EQ(joined(sqlite_rows(store, "SELECT typeof(t), t = '', typeof(vc) FROM texts WHERE id IN "
                                      "(9, 10) ORDER BY id")),
            "text|1|text\nnull|<null>|null");
  EXPECT_EQ(joined(sqlite_rows(store, "SELECT typeof(n), n FROM nums WHERE id = 7")),
            "text|-123.4500");
  EXPECT_EQ(joined(sqlite_rows(store, "SELECT typeof(d), d FROM times WHERE id = 4")),
            "text|2000-02-29");
}

// --- 2. Schemas and awkward identifiers ------------------------------------------------

namespace {
void create_awkward_tables(TestDatabase& src) {
  src.db().exec(R"SQL(
    CREATE SCHEMA "Sch ema";
    CREATE TABLE "Sch ema"."a,b" (id int PRIMARY KEY, "order" text, "select" int);
    INSERT INTO "Sch ema"."a,b" SELECT i, 'o' || i, i * 2 FROM generate_series(1, 20) i;
    CREATE TABLE public."Order Items" ("Id" int PRIMARY KEY, "Col ""Q""" text, "from" date);
    INSERT INTO public."Order Items" VALUES (1, 'q"1', '2020-01-01'), (2, NULL, NULL);
    CREATE SCHEMA "MixedCase";
    CREATE TABLE "MixedCase"."TaBle" ("KeY" text PRIMARY KEY, "Value With Space" numeric);
    INSERT INTO "MixedCase"."TaBle" VALUES ('K1', 1.5), ('k1', 2), ('a b', NULL);
    CREATE SCHEMA "we""ird";
    CREATE TABLE "we""ird"."ta.ble" (id int PRIMARY KEY, "a""b" text, "c,d" text);
    INSERT INTO "we""ird"."ta.ble" VALUES (1, 'x', 'y');
    CREATE TABLE plain (id int PRIMARY KEY, v text);
    INSERT INTO plain VALUES (1, 'one');
    CREATE TABLE other (id int PRIMARY KEY);
    INSERT INTO other VALUES (1);
  )SQL");
}

const std::vector<std::string> kAwkwardTables = {
    "\"MixedCase\".\"TaBle\"", "\"Sch ema\".\"a,b\"", "\"we\"\"ird\".\"ta.ble\"",
    "public.\"Order Items\"", "public.plain"};
}  // namespace

TEST_P(CopyTest, AwkwardNamesViaTables) {
  TestDatabase src;
  create_awkward_tables(src);
  std::string store = temp_store(store_kind());
  // Unquoted names fold to lower case and mean public; spaces after commas are allowed.
  sync_ok(src, store,
          {"--tables", "public.\"Order Items\",\"Sch ema\".\"a,b\", Plain,\"MixedCase\".\"TaBle\","
                       "\"we\"\"ird\".\"ta.ble\""});
  EXPECT_EQ(store_tables(store), kAwkwardTables);
  for (const auto& t : kAwkwardTables) expect_table_equal(src, store, t);
  RunResult other = run_pgseed({"dump", "--store", store, "--table", "other"});
  EXPECT_NE(other.exit_code, 0) << "public.other was not named but is in the store";

  // And the names survive streaming too.
  src.db().exec("INSERT INTO \"Sch ema\".\"a,b\" VALUES (100, 'new', 1);"
                "UPDATE public.\"Order Items\" SET \"Col \"\"Q\"\"\" = 'changed' WHERE \"Id\" = 2;"
                "DELETE FROM \"MixedCase\".\"TaBle\" WHERE \"KeY\" = 'k1';"
                "INSERT INTO \"we\"\"ird\".\"ta.ble\" VALUES (2, 'p', 'q');");
  sync_ok(src, store);
  for (const auto& t : kAwkwardTables) expect_table_equal(src, store, t);
}

TEST_P(CopyTest, AwkwardNamesViaPublication) {
  TestDatabase src;
  create_awkward_tables(src);
  src.db().exec("CREATE PUBLICATION \"My Pub\" FOR TABLE \"Sch ema\".\"a,b\", "
                "public.\"Order Items\", \"MixedCase\".\"TaBle\", \"we\"\"ird\".\"ta.ble\", plain");
  std::string store = temp_store(store_kind());
  sync_ok(src, store, {"--publication", "My Pub"});
  EXPECT_EQ(store_tables(store), kAwkwardTables);
  for (const auto& t : kAwkwardTables) expect_table_equal(src, store, t);
  src.db().exec("INSERT INTO \"Sch ema\".\"a,b\" VALUES (100, 'new', 1);");
  sync_ok(src, store);
  expect_table_equal(src, store, "\"Sch ema\".\"a,b\"");
}

// --- 3. What the publication publishes --------------------------------------------------

TEST_P(CopyTest, ColumnListRowFilterAndGeneratedColumns) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TABLE t (a int PRIMARY KEY, b text, c text, g int GENERATED ALWAYS AS (a * 2) STORED);
    INSERT INTO t (a, b, c) SELECT i, 'b' || i, 'c' || i FROM generate_series(1, 30) i;
    CREATE TABLE gen (id int PRIMARY KEY, x int, y int GENERATED ALWAYS AS (x + 1) STORED, z text);
    INSERT INTO gen (id, x, z) VALUES (1, 10, 'z1'), (2, NULL, NULL);
    CREATE TABLE unpublished (id int PRIMARY KEY);
    CREATE SCHEMA "Sch ema";
    CREATE TABLE "Sch ema"."R f" ("Key" int PRIMARY KEY, "v,1" text, "select" int, "Big""Q" text);
    INSERT INTO "Sch ema"."R f" SELECT i, 'v' || i, i % 5, 'q' FROM generate_series(1, 20) i;
    CREATE PUBLICATION p FOR TABLE t (a, b) WHERE (a > 10), gen,
      "Sch ema"."R f" ("Key", "select", "Big""Q") WHERE ("select" > 2 AND "Big""Q" IS NOT NULL);
  )SQL");
  std::string store = temp_store(store_kind());
  sync_ok(src, store, {"--publication", "p"});
  EXPECT_EQ(store_tables(store),
            (std::vector<std::string>{"\"Sch ema\".\"R f\"", "public.gen", "public.t"}));
  expect_dump_equals(src, store, "public.t", "SELECT a, b FROM t WHERE a > 10");
  expect_dump_equals(src, store, "\"Sch ema\".\"R f\"",
                     "SELECT \"Key\", \"select\", \"Big\"\"Q\" FROM \"Sch ema\".\"R f\" "
                     "WHERE \"select\" > 2");
  expect_dump_equals(src, store, "public.gen", "SELECT id, x, z FROM gen");
  RunResult j = run_pgseed({"dump", "--store", store, "--table", "public.t", "--format", "jsonl"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_EQ(j.out.substr(0, j.out.find('\n')), "{\"a\":\"11\",\"b\":\"b11\"}");
  RunResult g = run_pgseed({"dump", "--store", store, "--table", "public.gen", "--format", "jsonl"});
  EXPECT_EQ(g.out.substr(0, g.out.find('\n')), "{\"id\":\"1\",\"x\":\"10\",\"z\":\"z1\"}");

  src.db().exec("INSERT INTO t (a, b, c) VALUES (0, 'filtered out', 'x'), (50, 'in', 'x');"
                "INSERT INTO gen (id, x, z) VALUES (3, 30, 'z3');");
  sync_ok(src, store);
  expect_dump_equals(src, store, "public.t", "SELECT a, b FROM t WHERE a > 10");
  expect_dump_equals(src, store, "public.gen", "SELECT id, x, z FROM gen");
}

// PostgreSQL 18 publishes stored generated columns when asked to (publish_generated_columns,
// or a column list naming them): then they are copied and followed like any column. Row 1
// of each table is never touched after the copy: only the copy can have given it its value.
TEST_P(CopyTest, GeneratedColumnsThatPostgres18Publishes) {
  TestDatabase src;
  int version = std::stoi(src.db().value("SHOW server_version_num"));
  if (version < 180000)
    GTEST_SKIP() << "PostgreSQL " << version / 10000
                 << " publishes no generated columns (covered by ColumnListRowFilterAndGeneratedColumns)";
  src.db().exec(R"SQL(
    CREATE TABLE g (id int PRIMARY KEY, x int, y int GENERATED ALWAYS AS (x + 1) STORED,
                    v int GENERATED ALWAYS AS (x * 2) VIRTUAL, z text);
    INSERT INTO g (id, x, z) VALUES (1, 10, 'z1'), (2, NULL, NULL);
    CREATE TABLE l (id int PRIMARY KEY, x int, y int GENERATED ALWAYS AS (x * 3) STORED, z text);
    INSERT INTO l (id, x, z) VALUES (1, 5, 'a');
    CREATE PUBLICATION p FOR TABLE g, l (id, y) WITH (publish_generated_columns = stored);
  )SQL");
  std::string store = temp_store(store_kind());
  sync_ok(src, store, {"--publication", "p"});
  // Virtual generated columns are never published.
  expect_dump_equals(src, store, "public.g", "SELECT id, x, y, z FROM g");
  expect_dump_equals(src, store, "public.l", "SELECT id, y FROM l");

  src.db().exec("INSERT INTO g (id, x, z) VALUES (3, 30, 'z3'); UPDATE g SET x = 11 WHERE id = 2;"
                "INSERT INTO l (id, x, z) VALUES (2, 7, 'b');");
  sync_ok(src, store);
  expect_dump_equals(src, store, "public.g", "SELECT id, x, y, z FROM g");
  expect_dump_equals(src, store, "public.l", "SELECT id, y FROM l");
}

TEST_P(CopyTest, PartitionedTables) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TABLE m (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
    CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (100);
    CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (100) TO (200);
    CREATE TABLE m3 PARTITION OF m FOR VALUES FROM (200) TO (300) PARTITION BY LIST (id);
    CREATE TABLE m3a PARTITION OF m3 DEFAULT;
    INSERT INTO m SELECT i, i % 300, 'v' || i FROM generate_series(1, 900) i;
    CREATE PUBLICATION proot FOR TABLE m WITH (publish_via_partition_root = true);
    CREATE PUBLICATION pleaf FOR TABLE m WITH (publish_via_partition_root = false);
  )SQL");
  std::string root_store = temp_store(store_kind());
  sync_ok(src, root_store, {"--publication", "proot"});
  EXPECT_EQ(store_tables(root_store), std::vector<std::string>{"public.m"});
  expect_table_equal(src, root_store, "public.m");

  std::string leaf_store = temp_store(store_kind());
  sync_ok(src, leaf_store, {"--publication", "pleaf"});
  EXPECT_EQ(store_tables(leaf_store),
            (std::vector<std::string>{"public.m1", "public.m2", "public.m3a"}));
  for (const char* leaf : {"m1", "m2", "m3a"})
    expect_dump_equals(src, leaf_store, std::string("public.") + leaf,
                       std::string("SELECT * FROM ONLY ") + leaf);

  src.db().exec("INSERT INTO m VALUES (1000, 5, 'a'), (1001, 150, 'b'), (1002, 250, 'c');");
  sync_ok(src, root_store);
  sync_ok(src, leaf_store);
  expect_table_equal(src, root_store, "public.m");
  for (const char* leaf : {"m1", "m2", "m3a"})
    expect_dump_equals(src, leaf_store, std::string("public.") + leaf,
                       std::string("SELECT * FROM ONLY ") + leaf);
}

// Legacy inheritance: pgoutput sends a parent's own changes only (its children are tables
// of their own), so the copy must hold the parent's own rows only, as COPY parent does.
TEST_P(CopyTest, InheritanceParentHoldsItsOwnRows) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TABLE parent (id int PRIMARY KEY, v text);
    CREATE TABLE child (extra int) INHERITS (parent);
    ALTER TABLE child ADD PRIMARY KEY (id);
    INSERT INTO parent VALUES (1, 'p1'), (2, 'p2');
    INSERT INTO child VALUES (3, 'c3', 30), (4, 'c4', 40);
  )SQL");
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  EXPECT_EQ(store_tables(store), (std::vector<std::string>{"public.child", "public.parent"}));
  expect_dump_equals(src, store, "public.parent", "SELECT * FROM ONLY parent");
  expect_table_equal(src, store, "public.child");
}

TEST_P(CopyTest, KeylessTableWithDuplicateRows) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TABLE dup (a int, b text);
    ALTER TABLE dup REPLICA IDENTITY FULL;
    INSERT INTO dup VALUES (1, 'x'), (1, 'x'), (1, 'x'), (2, NULL), (2, NULL), (NULL, NULL),
                           (NULL, NULL), (3, '');
  )SQL");
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  expect_table_equal(src, store, "public.dup");
  src.db().exec("DELETE FROM dup WHERE ctid = (SELECT ctid FROM dup WHERE a = 1 LIMIT 1);"
                "INSERT INTO dup VALUES (2, NULL);");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.dup");
}

// --- 4. The snapshot cut -----------------------------------------------------------------

// Why this proves the cut: the slot's exported snapshot must hold exactly the transactions
// that committed before the slot's consistent point, and the stream then delivers exactly
// those that committed at or after it. The writer appends rows to a table WITHOUT a key
// (REPLICA IDENTITY FULL), where an insert is applied as a new row, never merged with an
// equal one. So after copy + stream (and a second sync that catches up after the writer
// stopped) the store equals the source as a multiset if and only if the copy held exactly
// the rows committed before the consistent point: a later row in the copy is also streamed
// and shows up twice; an earlier row missing from the copy is never streamed and is missing.
// A large table copied first (one job) keeps the writer busy between slot creation and the
// copy of `log`. Each writer transaction also brackets its commit record between two WAL
// insert positions (read before and after COMMIT), which shows that the writer committed on
// both sides of the consistent point (pgseed logs it: "created slot S at X/X").
TEST_P(CopyTest, ConcurrentWriterIsCutAtTheConsistentPoint) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TABLE big (id bigint PRIMARY KEY, pad text);
    INSERT INTO big SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 200000) i;
    CREATE TABLE log (n bigint, at timestamptz DEFAULT clock_timestamp());
    ALTER TABLE log REPLICA IDENTITY FULL;
  )SQL");

  struct Bracket { int64_t n; std::string lo, hi; };
  std::vector<Bracket> brackets;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> written{0};
  std::thread writer([&] {
    Db w(src.conninfo());
    for (int64_t n = 1; !stop; ++n) {
      std::string lo = w.value("BEGIN; INSERT INTO log (n) VALUES (" + std::to_string(n) +
                               "); SELECT pg_current_wal_insert_lsn()::text");
      std::string hi = w.value("COMMIT; SELECT pg_current_wal_insert_lsn()::text");
      brackets.push_back({n, lo, hi});
      written = n;
    }
  });
  while (written < 50) std::this_thread::sleep_for(std::chrono::milliseconds(5));

  std::string store = temp_store(store_kind());
  RunResult r = run_pgseed({"sync", "--source", src.conninfo(), "--store", store, "--jobs", "1", "--all-tables"});
  int64_t during = written;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  writer.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;

  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, std::regex("created slot \\S+ at ([0-9A-F]+/[0-9A-F]+)")))
      << r.err;
  std::string cp = m[1];
  int before = 0, after = 0, straddling = 0;
  {
    // Compare LSNs on the server, where pg_lsn does it.
    std::string values;
    for (const auto& b : brackets)
      values += (values.empty() ? "" : ",") + std::string("('") + b.lo + "'::pg_lsn,'" + b.hi + "'::pg_lsn)";
    std::string counts = src.db().value(
        "SELECT count(*) FILTER (WHERE hi <= '" + cp + "') || ',' || "
        "count(*) FILTER (WHERE lo >= '" + cp + "') || ',' || "
        "count(*) FILTER (WHERE lo < '" + cp + "' AND hi > '" + cp + "') FROM (VALUES " + values +
        ") v(lo, hi)");
    std::sscanf(counts.c_str(), "%d,%d,%d", &before, &after, &straddling);
  }
  std::printf("[ writer  ] %zu rows: %d committed before the consistent point %s, %d after, "
              "%d straddling; %lld written while the sync ran\n",
              brackets.size(), before, cp.c_str(), after, straddling, (long long)during);
  EXPECT_GT(before, 0);
  EXPECT_GT(after, 0) << "the writer did not commit after the slot was created: the test "
                         "did not exercise the cut";

  sync_ok(src, store);  // catch up with what the writer did after the first sync's target
  expect_table_equal(src, store, "public.log");
  expect_table_equal(src, store, "public.big");
}

// --- 6. A million rows ---------------------------------------------------------------------

TEST_P(LargeCopyTest, MillionRows) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TABLE million (id bigint PRIMARY KEY, t text, n numeric, ts timestamptz, j jsonb);
    INSERT INTO million
      SELECT i, 'row ' || i || ' ' || md5(i::text), (i * 1.25)::numeric / 7,
             timestamptz '2020-01-01 00:00:00+00' + i * interval '1 second',
             jsonb_build_object('i', i, 'even', i % 2 = 0, 'tags', jsonb_build_array('a', i % 10))
      FROM generate_series(1, 1000000) i;
    ANALYZE million;
  )SQL");
  std::string store = temp_store(store_kind());
  auto t0 = std::chrono::steady_clock::now();
  sync_ok(src, store);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ timing  ] %s: pgseed sync of 1,000,000 rows took %.1f s (peak RSS %ld MB)\n",
              store_kind().c_str(), secs, last_child_peak_rss_kb() / 1024);
  expect_table_equal(src, store, "public.million");
}

INSTANTIATE_TEST_SUITE_P(Stores, CopyTest, ::testing::ValuesIn(test_support::kStoreKinds));
INSTANTIATE_TEST_SUITE_P(Stores, LargeCopyTest, ::testing::ValuesIn(test_support::kStoreKinds));

}  // namespace pgseed::test
