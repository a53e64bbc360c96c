// The initial copy's binary COPY (decode/copy_binary.h) against the server's own text: the
// same rows read once in binary, through CopyBinaryParser, and once in text, through
// parse_copy_text_line, must give the very same texts, value by value, for edge values of
// every type pgseed decodes and for columns the SELECT casts to text. And the tables that
// must not be read in binary (a cast to text that is not the type's output) are not.
#include <gtest/gtest.h>

#include "decode/copy_binary.h"
#include "decode/copy_text.h"
#include "harness.h"
#include "pg/catalog.h"
#include "pg/connection.h"
#include "pg/copy_reader.h"

namespace pgseed::test {
namespace {

RowBatch read_copy(pg::Connection& conn, const pg::PublishedTable& t,
                   const std::optional<BinaryCopyPlan>& plan) {
  pg::CopyReader reader(conn);
  reader.start(pg::copy_query(t, std::nullopt, plan ? &plan->cast_to_text : nullptr), "reading");
  RowBatch out;
  std::optional<CopyBinaryParser> parser;
  if (plan) parser.emplace(plan->fields);
  size_t trailers = 0;
  pg::CopyBuffer line;
  while (reader.next(line)) {
    if (!parser) {
      parse_copy_text_line(line.text(), t.def.columns.size(), out);
    } else if (!parser->parse(line.text(), out)) {
      ++trailers;
    }
  }
  if (plan) {
    EXPECT_EQ(trailers, 1u) << t.def.qualified();
  }
  return out;
}

void expect_same_texts(const pg::PublishedTable& t, const RowBatch& binary, const RowBatch& text) {
  ASSERT_EQ(binary.rows(), text.rows()) << t.def.qualified();
  Row a, b;
  size_t checked = 0;
  for (size_t i = 0; i < text.rows(); ++i) {
    binary.row(i, a);
    text.row(i, b);
    ASSERT_EQ(a.size(), b.size());
    for (size_t c = 0; c < a.size(); ++c) {
      EXPECT_EQ(a[c].is_null(), b[c].is_null()) << t.def.qualified() << " row " << i << " " << t.def.columns[c].name;
      EXPECT_EQ(a[c].text, b[c].text) << t.def.qualified() << " row " << i << " " << t.def.columns[c].name;
      ++checked;
    }
  }
  EXPECT_GT(checked, 0u);
}

std::vector<pg::PublishedTable> tables_of(pg::Connection& conn) {
  conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ", "begin");
  return pg::published_tables(conn, "p");
}

TEST(CopyBinary, GivesTheTextCopysTextsForEveryDecodedType) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE DOMAIN money_ish AS numeric(12,2);
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'a,b');
    CREATE TABLE edges (id int PRIMARY KEY, n numeric, n2 numeric(12,3), nd money_ish,
      f4 float4, f8 float8, d date, ts timestamp, tz timestamptz, ts0 timestamp(0),
      b bytea, u uuid, bo bool, i2 int2, i8 int8, o oid, t text, vc varchar(9), c char(5),
      nm name, iv interval, tm time, md mood, na numeric[], j jsonb);
    INSERT INTO edges VALUES
      (1, 'NaN', 0, 0, 'NaN', 'NaN', 'infinity', 'infinity', 'infinity', 'infinity', '\x', '00000000-0000-0000-0000-000000000000',
          true, -32768, -9223372036854775808, 0, '', '', '', '', '0', '00:00', 'sad', '{}', '{}'),
      (2, 'Infinity', -123456789.125, -0.5, 'Infinity', 'Infinity', '-infinity', '-infinity', '-infinity', '-infinity',
          '\x00', 'ffffffff-ffff-ffff-ffff-ffffffffffff', false, 32767, 9223372036854775807, 4294967295,
          E'tab\there \\ back\nline', 'a,b', 'ab', 'Mixed Case', '-178000000 years', '24:00:00', 'a,b',
          '{1.5,NaN,-0.000}', '{"a": [1, 2.50]}'),
      (3, '-Infinity', 0.001, 1234567890.12, '-0', '-0', '4713-01-01 BC', '4713-01-01 00:00:00 BC',
          '4713-01-01 00:00:00+00 BC', '0044-03-15 12:00:00 BC', '\x00ff00deadbeef00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
          NULL, 0, 0, 1, 'héllo 日本語 🎉', '🎉', 'é', 'ünï', '1 year 2 mons -3 days 04:05:06.789', '23:59:59.999999',
          NULL, NULL, 'null'),
      (4, 123456789012345678901234567890.123456789, NULL, NULL, '1e-45', '5e-324', '5874897-12-31',
          '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00', '1999-12-31 23:59:59',
          decode(repeat('00ff', 5000), 'hex'), NULL, NULL, NULL, NULL, NULL, '\N', '\.', ' ', NULL, NULL, NULL, NULL, NULL, NULL),
      (5, -0.000000000000000000001, NULL, NULL, '3.4028235e38', '1.7976931348623157e308', '0001-01-01',
          '2000-02-29 12:34:56.123456', '2000-02-29 23:59:59.999999-12', '1970-01-01', '\x5c2e0a0d09', NULL, NULL,
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (6, 1e-300, NULL, NULL, '1e15', '1e15', '2000-01-01', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', NULL, NULL,
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (7, 1e300, NULL, NULL, '1.5e-5', '0.30000000000000004', '1999-12-31', '1999-12-31 23:59:59.9', '2000-01-01 00:00:00.000001+00',
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (8, -123.4500, NULL, NULL, '7.038531e-26', '2.2250738585072014e-308', NULL, NULL, NULL,
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (9, 10000, 10000, 10000, '100000', '123456789012345.6', NULL, NULL, NULL,
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    -- Many generated values across the ranges: numerics of every scale and size, dates and
    -- timestamps over millennia, floats over their exponents.
    CREATE TABLE spread (id int PRIMARY KEY, n numeric, ns numeric(30,7), f4 float4, f8 float8,
                         d date, ts timestamp, tz timestamptz);
    INSERT INTO spread SELECT g,
        round((random() - 0.5)::numeric * 10::numeric ^ (g % 41 - 20), g % 25),
        round((random() * 10 ^ (g % 23))::numeric, 7),
        ((random() - 0.5) * 10 ^ (g % 70 - 35))::float4,
        (random() - 0.5) * 10 ^ (g % 600 - 300),
        date '0001-01-01' + (random() * 3650000)::int,
        timestamp '1000-01-01' + random() * interval '3000000 days',
        timestamptz '2000-01-01 00:00+00' + (random() - 0.5) * interval '900000 days'
      FROM generate_series(1, 20000) g;
    CREATE PUBLICATION p FOR TABLE edges, spread;
  )SQL");
  pg::Connection conn = pg::Connection::open(src.conninfo());
  for (const auto& t : tables_of(conn)) {
    std::optional<BinaryCopyPlan> plan = plan_binary_copy(t.def.columns, t.casts_to_text_by_function);
    ASSERT_TRUE(plan.has_value()) << t.def.qualified();
    if (t.def.name == "edges") {
      // iv, tm, md, na and j are cast to text; c (bpchar) is read as it is, padded.
      std::string cast;
      for (size_t i = 0; i < t.def.columns.size(); ++i)
        if (plan->cast_to_text[i]) cast += t.def.columns[i].name + " ";
      EXPECT_EQ(cast, "iv tm md na j ");
    }
    RowBatch binary = read_copy(conn, t, plan);
    RowBatch text = read_copy(conn, t, std::nullopt);
    expect_same_texts(t, binary, text);
  }
}

TEST(CopyBinary, TablesWithoutCostlyTypesOrWithFunctionCastsStayInText) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TYPE mood AS ENUM ('sad', 'ok');
    CREATE FUNCTION shout(mood) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper(format('%s', $1)) $$;
    CREATE CAST (mood AS text) WITH FUNCTION shout(mood);
    CREATE TABLE narrow (id bigint PRIMARY KEY, v int, f bool, t text);
    CREATE TABLE net (id int PRIMARY KEY, n numeric, ip inet);
    CREATE TABLE shouted (id int PRIMARY KEY, n numeric, m mood);
    CREATE TABLE fine (id int PRIMARY KEY, n numeric, m int[]);
    INSERT INTO net VALUES (1, 1.5, '192.168.0.1');
    INSERT INTO shouted VALUES (1, 1.5, 'sad');
    CREATE PUBLICATION p FOR TABLE narrow, net, shouted, fine;
  )SQL");
  pg::Connection conn = pg::Connection::open(src.conninfo());
  for (const auto& t : tables_of(conn)) {
    bool binary = plan_binary_copy(t.def.columns, t.casts_to_text_by_function).has_value();
    EXPECT_EQ(binary, t.def.name == "fine") << t.def.qualified();
  }
  // What the casts would have done: the reason the tables stay in text.
  EXPECT_EQ(src.db().value("SELECT ip::text FROM net"), "192.168.0.1/32");
  EXPECT_EQ(src.db().value("SELECT m::text FROM shouted"), "SAD");

  // And a sync stores what the text COPY says, on both stores.
  for (std::string kind : {"sqlite", "rocksdb"}) {
    std::string store = temp_store(kind);
    sync_ok(src, store, {"--publication", "p"});
    expect_table_equal(src, store, "public.net");
    expect_table_equal(src, store, "public.shouted");
  }
}

}  // namespace
}  // namespace pgseed::test
