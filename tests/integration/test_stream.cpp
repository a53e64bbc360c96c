// Streaming (issue #3): every change a replica follows, applied by one-shot `pgseed sync`
// after the initial copy, and compared with the source through `pgseed dump`.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iostream>

#include "store_kinds.h"
#include "stream_support.h"

namespace pgseed::test {

namespace {

// Peak RSS of pgseed alone. A child forked from this test process starts with its pages
// mapped, and ru_maxrss keeps them (exec does not reset it), so after other tests have
// grown this process the child's figure would be this process's. Instead a fresh copy of
// this binary (small: it has done nothing yet) is started; before main() it runs pgseed,
// waits, writes pgseed's exit code and ru_maxrss, and exits.
constexpr const char* kProbeArgs = "PGSEED_RSS_PROBE_ARGS";  // arguments, \x1f-separated
constexpr const char* kProbeOut = "PGSEED_RSS_PROBE_OUT";    // where the result goes

[[maybe_unused]] const bool g_rss_probe = [] {
  const char* args = std::getenv(kProbeArgs);
  const char* out = std::getenv(kProbeOut);
  if (!args || !out) return false;
  std::vector<std::string> argv(1);
  for (const char* p = args; *p; ++p) {
    if (*p == '\x1f') argv.emplace_back();
    else argv.back() += *p;
  }
  RunResult r = run_pgseed(argv);
  std::ofstream(out) << r.exit_code << "\n" << last_child_peak_rss_kb() << "\n" << r.err;
  std::_Exit(0);
}();

// Runs pgseed like run_pgseed (stdout is not kept); `peak_kb` gets its own peak RSS.
RunResult run_pgseed_alone(const std::vector<std::string>& args, long& peak_kb) {
  std::string joined, out = temp_log_path();
  for (size_t i = 0; i < args.size(); ++i) joined += (i ? "\x1f" : "") + args[i];
  pid_t pid = fork();
  if (pid == 0) {
    setenv(kProbeArgs, joined.c_str(), 1);
    setenv(kProbeOut, out.c_str(), 1);
    execl("/proc/self/exe", "pgseed_rss_probe", static_cast<char*>(nullptr));
    _exit(127);
  }
  RunResult r;
  EXPECT_EQ(wait_pid(pid), 0) << "the RSS probe failed";
  std::ifstream in(out);
  in >> r.exit_code >> peak_kb;
  in.ignore(1);
  r.err.assign(std::istreambuf_iterator<char>(in), {});
  return r;
}

}  // namespace

class StreamTest : public StoreTest {};

TEST_P(StreamTest, EveryDmlKind) {
  TestDatabase src;
  src.db().exec(
      "CREATE TABLE t (id int PRIMARY KEY, a text, b int);"
      "INSERT INTO t SELECT i, 'a' || i, i FROM generate_series(1, 100) i;"
      "CREATE TABLE c (k1 int, k2 text, v text, PRIMARY KEY (k1, k2));"
      "INSERT INTO c SELECT i % 10, 'k' || i, 'v' FROM generate_series(1, 50) i;");
  std::string store = temp_store(store_kind());
  sync_ok(src, store);

  src.db().exec(
      // Single statements: insert, update of a non-key column, of the key, delete.
      "INSERT INTO t VALUES (1000, 'new', NULL), (1001, NULL, 5);"
      "UPDATE t SET a = 'changed', b = NULL WHERE id < 10;"
      "UPDATE t SET id = id + 500 WHERE id BETWEEN 10 AND 20;"
      "UPDATE t SET id = 2000, a = 'moved and changed' WHERE id = 30;"
      "DELETE FROM t WHERE id BETWEEN 40 AND 45;"
      "UPDATE c SET k2 = k2 || 'x' WHERE k1 = 3;"
      "UPDATE c SET v = 'w' WHERE k1 = 4;"
      "DELETE FROM c WHERE k1 = 5;"
      // A multi-statement transaction touching the same rows several times, and a swap of
      // two keys through a third.
      "BEGIN;"
      "INSERT INTO t VALUES (3000, 'x', 1);"
      "UPDATE t SET a = 'y' WHERE id = 3000;"
      "UPDATE t SET id = 3001 WHERE id = 3000;"
      "DELETE FROM t WHERE id = 3001;"
      "INSERT INTO t VALUES (3000, 'again', 2);"
      "UPDATE t SET id = 9999 WHERE id = 50;"
      "UPDATE t SET id = 50 WHERE id = 51;"
      "UPDATE t SET id = 51 WHERE id = 9999;"
      "COMMIT;"
      // Rolled back: nothing of it may appear.
      "BEGIN;"
      "INSERT INTO t VALUES (4000, 'rolled back', 0);"
      "UPDATE t SET a = 'rolled back' WHERE id = 60;"
      "DELETE FROM t WHERE id = 61;"
      "ROLLBACK;"
      // Savepoints: the part rolled back to must not appear, the rest must.
      "BEGIN;"
      "INSERT INTO t VALUES (5000, 'kept', 1);"
      "SAVEPOINT s1;"
      "INSERT INTO t VALUES (5001, 'lost', 1);"
      "UPDATE t SET a = 'lost' WHERE id = 62;"
      "DELETE FROM t WHERE id = 63;"
      "ROLLBACK TO s1;"
      "INSERT INTO t VALUES (5002, 'kept too', 1);"
      "SAVEPOINT s2;"
      "UPDATE t SET a = 'kept after release' WHERE id = 64;"
      "DELETE FROM t WHERE id = 65;"
      "RELEASE s2;"
      "SAVEPOINT s3;"
      "UPDATE t SET id = 7000 WHERE id = 66;"
      "ROLLBACK TO s3;"
      "COMMIT;");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.t");
  expect_table_equal(src, store, "public.c");

  // A second round on top of the streamed state.
  src.db().exec("UPDATE t SET b = coalesce(b, 0) + 1; DELETE FROM t WHERE id % 3 = 0;"
                "UPDATE c SET v = v || k2;");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.t");
  expect_table_equal(src, store, "public.c");
}

TEST_P(StreamTest, TruncateSeveralTables) {
  TestDatabase src;
  src.db().exec(
      "CREATE TABLE ta (id serial PRIMARY KEY, v text);"
      "CREATE TABLE tb (id int PRIMARY KEY, v text);"
      "CREATE TABLE parent (id int PRIMARY KEY);"
      "CREATE TABLE child (id int PRIMARY KEY, pid int REFERENCES parent);"
      "CREATE TABLE other (id int PRIMARY KEY);"
      "INSERT INTO ta (v) SELECT 'a' || i FROM generate_series(1, 20) i;"
      "INSERT INTO tb SELECT i, 'b' FROM generate_series(1, 20) i;"
      "INSERT INTO parent SELECT generate_series(1, 10);"
      "INSERT INTO child SELECT i, i FROM generate_series(1, 10) i;"
      "INSERT INTO other SELECT generate_series(1, 10);");
  std::string store = temp_store(store_kind());
  sync_ok(src, store);

  src.db().exec("TRUNCATE ta, tb;"
                "INSERT INTO ta (v) VALUES ('after 1'), ('after 2');"  // ids continue: 21, 22
                "INSERT INTO tb VALUES (1, 'reused key');");
  sync_ok(src, store);
  for (const char* t : {"public.ta", "public.tb", "public.other"}) expect_table_equal(src, store, t);

  src.db().exec("TRUNCATE ta RESTART IDENTITY;"
                "INSERT INTO ta (v) VALUES ('restarted');"  // id 1 again
                "TRUNCATE parent CASCADE;"                   // child goes too
                "INSERT INTO parent VALUES (100); INSERT INTO child VALUES (1, 100);"
                "BEGIN; INSERT INTO tb VALUES (50, 'x'); TRUNCATE tb, other;"
                "INSERT INTO tb VALUES (51, 'after truncate in txn'); COMMIT;"
                "BEGIN; TRUNCATE tb; ROLLBACK;");
  sync_ok(src, store);
  for (const char* t : {"public.ta", "public.tb", "public.parent", "public.child", "public.other"})
    expect_table_equal(src, store, t);
}

TEST_P(StreamTest, UnchangedToastedValuesSurvive) {
  TestDatabase src;
  // EXTERNAL: stored out of line, uncompressed, so the 20 kB values really are TOASTed.
  src.db().exec(
      "CREATE TABLE big (id int PRIMARY KEY, note text, payload text, blob bytea);"
      "ALTER TABLE big ALTER payload SET STORAGE EXTERNAL, ALTER blob SET STORAGE EXTERNAL;"
      "INSERT INTO big SELECT i, 'n', repeat(md5(i::text), 640), "
      "  decode(repeat(md5(i::text), 400), 'hex') FROM generate_series(1, 5) i;"
      "CREATE TABLE bigfull (k int, note text, payload text);"  // no key
      "ALTER TABLE bigfull REPLICA IDENTITY FULL;"
      "ALTER TABLE bigfull ALTER payload SET STORAGE EXTERNAL;"
      "INSERT INTO bigfull SELECT i % 2, 'n', repeat(md5(i::text), 640) FROM generate_series(1, 4) i;");
  std::string store = temp_store(store_kind());
  sync_ok(src, store);

  src.db().exec(
      "INSERT INTO big SELECT i, 'streamed', repeat(md5(i::text), 700), NULL "
      "  FROM generate_series(10, 12) i;"
      "UPDATE big SET note = 'copied row, note changed' WHERE id IN (1, 2);"
      "UPDATE big SET id = 100, note = 'key changed' WHERE id = 3;"  // payload unchanged
      "UPDATE big SET payload = 'small now' WHERE id = 4;"
      "UPDATE bigfull SET note = 'changed' WHERE k = 1;");
  sync_ok(src, store);
  src.db().exec("UPDATE big SET note = 'streamed row, note changed' WHERE id >= 10;"
                "UPDATE big SET blob = NULL, note = 'x' WHERE id = 5;"
                "UPDATE bigfull SET note = 'again' WHERE k = 0;");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.big");
  expect_table_equal(src, store, "public.bigfull");
  EXPECT_EQ(src.db().value("SELECT min(length(payload)) FROM big WHERE id <> 4"), "20480");
}

TEST_P(StreamTest, ReplicaIdentityFullWithDuplicateRows) {
  TestDatabase src;
  src.db().exec(
      "CREATE TABLE d (a int, b text, f float8);"
      "ALTER TABLE d REPLICA IDENTITY FULL;"
      "INSERT INTO d VALUES (1, 'x', 1.5), (1, 'x', 1.5), (2, NULL, NULL), (2, NULL, NULL),"
      "  (3, 'y', 'NaN'), (3, 'y', 'NaN'), (4, 'z', '-0'), (4, 'z', '-0');");
  std::string store = temp_store(store_kind());
  sync_ok(src, store);

  src.db().exec(
      // One of two identical rows each time: exactly one must go or change.
      "DELETE FROM d WHERE ctid = (SELECT ctid FROM d WHERE a = 1 LIMIT 1);"
      "UPDATE d SET b = 'one of two' WHERE ctid = (SELECT ctid FROM d WHERE a = 2 LIMIT 1);"
      "DELETE FROM d WHERE ctid = (SELECT ctid FROM d WHERE a = 3 LIMIT 1);"
      "UPDATE d SET a = 40 WHERE ctid = (SELECT ctid FROM d WHERE a = 4 LIMIT 1);"
      "INSERT INTO d VALUES (5, 'dup', 0), (5, 'dup', 0), (5, 'dup', 0);"
      "BEGIN;"
      "DELETE FROM d WHERE ctid = (SELECT ctid FROM d WHERE a = 5 LIMIT 1);"
      "UPDATE d SET f = 2 WHERE ctid = (SELECT ctid FROM d WHERE a = 5 LIMIT 1);"
      "COMMIT;");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.d");

  src.db().exec("UPDATE d SET b = 'all'; DELETE FROM d WHERE a = 5;");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.d");
}

// The same value set goes through the copy (rows 1..n) and through the stream (rows 101..).
TEST_P(StreamTest, AllTypeFamiliesStreamed) {
  TestDatabase src;
  src.db().exec(R"SQL(
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'with ''quote'' and space');
    CREATE DOMAIN posint AS int CHECK (VALUE > 0);
    CREATE DOMAIN short_text AS varchar(20);
    CREATE TYPE pair AS (a int, b text);
    CREATE TABLE v (
      id int PRIMARY KEY,
      i2 smallint, i4 int, i8 bigint, b bool,
      n numeric, n2 numeric(10,2), f4 real, f8 double precision,
      by bytea, t text, vc varchar(10), ch char(5), qc "char", nm name,
      ia int[], ta text[], fa float8[], ia2 int[], ba bytea[],
      e mood, ea mood[], d posint, dt short_text, c pair, ca pair[],
      r int4range, nr numrange, tr tstzrange, dr daterange,
      j json, jb jsonb,
      ts timestamp, tz timestamptz, dd date, tm time, ttz timetz, iv interval,
      u uuid, ip inet, cd cidr, mac macaddr, bt bit(4), vb varbit, mo money,
      pt point, bx box, tsv tsvector, x xml, o oid);
    CREATE TABLE vals (LIKE v);
    INSERT INTO vals VALUES
     (1, -32768, -2147483648, -9223372036854775808, true,
      'NaN', 12345678.99, 'NaN', 'NaN',
      '\x00ff0000', E'line1\nline2\r\n\ttab', 'ünïcödé', 'ab', 'x', 'some name',
      '{1,NULL,3}', '{"a,b","c\"d",NULL,"NULL","","back\\slash"}', '{NaN,Infinity,-Infinity,-0}',
      '{{1,2},{3,4}}', ARRAY['\x00'::bytea, '\x'::bytea, NULL],
      'with ''quote'' and space', '{sad,"with ''quote'' and space"}', 7, E'back\\slash',
      ROW(1, 'x y'), ARRAY[ROW(1, 'a,b')::pair, ROW(NULL, NULL)::pair],
      '[1,10)', 'empty', '[2020-01-01 00:00+00,infinity)', '[2020-01-01,2020-02-01)',
      '{"a": [1, 2.50, "x"],  "b" : null}', '{"b": {"c": [true, false, null]}, "a": 1.0}',
      '2020-02-29 12:34:56.789012', '1999-12-31 23:59:59.999999+05', '0044-03-15 BC', '24:00:00',
      '12:00:00+05:30', '1 year 2 mons -3 days 04:05:06.789',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
      B'1010', B'101', 12.34, '(1.5,-2)', '((0,0),(1,1))', 'a fat cat', '<a>b &amp; c</a>', 12345),
     (2, 32767, 2147483647, 9223372036854775807, false,
      '123456789012345678901234567890.123456789012345678901234567890', -0.01, 'Infinity', '-Infinity',
      '\x', 'quote '' "dq" ,comma;semi', '', '', '"', '',
      '{}', '{}', '{1.5e300,-1e-300,0.1}', '{{NULL}}', '{}',
      'sad', '{}', 2147483647, '', ROW(NULL, ''), '{}',
      'empty', '(1.5,2.5]', 'empty', 'empty',
      '[]', '"str\u00e9 \"q\""',
      'infinity', '-infinity', 'infinity', '00:00:00', '00:00:00-12', '-178000000 years',
      '00000000-0000-0000-0000-000000000000', '::1', '::/0', '00:00:00:00:00:00',
      B'0000', B'', -92233720368547758.08, '(0,0)', '((-1,-1),(-1,-1))', '', '<x/>', 0),
     (3, 0, 0, 0, NULL,
      -0.000000000000000000001, 0, '-0', '-0',
      '\x5c6e', E'\\N', 'NULL', 'N', E'\\', 'x',
      '{0}', '{"\\N"}', '{NULL}', '{1}', '{"\\x5c"}',
      'ok', '{NULL}', 1, 'NULL', ROW(0, E'\\N'), '{"(,)"}',
      '(,)', '(,)', '(,)', '(,)',
      '"\\N"', 'null',
      '-infinity', 'infinity', '-infinity', '23:59:59.999999', '23:59:59.999999+14', '0',
      'ffffffff-ffff-ffff-ffff-ffffffffffff', '255.255.255.255', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff',
      B'1111', B'1', 0, '(-0,1e300)', '((1e-300,1),(0,0))', E'''a b'':1A', E'<a>\n</a>', 4294967295),
     (4, 1, 1, 1, true,
      repeat('9', 1000)::numeric, 99999999.99, '1.17549435e-38', '1e-320',
      decode(repeat('00', 1000), 'hex'), repeat('€', 2000), 'ten chars!', 'five', 'z', repeat('n', 63),
      '{2147483647,-2147483648}', '{" leading space","trailing space ","{braces}"}',
      '{4.9e-324,1.7976931348623157e308}', '{{1},{2}}', NULL,
      'sad', '{ok,ok}', 1, 'x', NULL, NULL,
      '[-2147483648,2147483647)', '[-1e100,1e100]', '[1970-01-01 00:00:00+00,1970-01-01 00:00:01+00]',
      '[-infinity,infinity]',
      '{"deep": {"deeper": {"deepest": [[[]]]}}, "unicode": "\u2603", "esc": "\n\t\\"}', '{"n": 1e400}',
      '1970-01-01 00:00:00', '2038-01-19 03:14:08+00', '5874897-12-31', '12:00', '12:00+00',
      '-1 days +23:59:59.999999',
      NULL, '10.1.2.3', '10.1.2.0/24', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
     (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL);
    INSERT INTO v SELECT * FROM vals;

    -- The rest of the copy tests' families (test_copy.cpp): multiranges, geometry, text
    -- search, pg_lsn, domains over domains and floats, typmods, arrays with bounds.
    CREATE DOMAIN real_dom AS float4;
    CREATE DOMAIN posint2 AS posint;
    CREATE TABLE w (id int PRIMARY KEY, r8 int8range, tsr tsrange, m4 int4multirange,
      mdr datemultirange, mnr nummultirange, mtz tstzmultirange, mac8 macaddr8, pg polygon,
      ci circle, ln line, ls lseg, pa path, tq tsquery, lsn pg_lsn, fd real_dom, di2 posint2,
      ts0 timestamp(0), tstz3 timestamptz(3), ia3 int[], lb int[], na numeric[], boa bool[],
      ja jsonb[], da date[], ua uuid[], ra int4range[], f4a float4[]);
    CREATE TABLE wvals (LIKE w);
    INSERT INTO wvals VALUES
     (1, '(,)', '["2000-01-01 00:00","2000-01-02 00:00")', '{[1,3),[5,7)}',
      '{[2000-01-01,2000-02-01),[2001-01-01,)}', '{[1.5,2.5]}',
      '{[2000-01-01 00:00+00,2000-01-02 00:00+00)}', '08:00:2b:01:02:03:04:05',
      '((0,0),(1,0),(1,1))', '<(0,0),5>', '{1,-1,0}', '[(0,0),(1,1)]', '[(0,0),(1,1),(2,0)]',
      'fat & (rat | !cat)', '16/B374D848', 'NaN', 3, '0044-03-15 12:00:00 BC',
      '2024-03-10 02:30:00 America/New_York', '{{{1}},{{2}}}', '[0:2]={7,8,9}',
      '{1.5,NaN,-3,1e-20,Infinity}', '{t,f,NULL}', ARRAY['{"a":1}'::jsonb, '"x"'::jsonb, NULL],
      '{infinity,2000-01-01,"4713-01-01 BC"}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}',
      '{"[1,2)",empty}', '{1e-45,3.4028235e38,0.1,-0,NaN}'),
     (2, '[-9223372036854775808,9223372036854775807)', 'empty', '{}', '{}', '{(,)}', '{}',
      '00:00:00:00:00:00:00:00', '((0,0))', '<(1,1),0>', '{0,1,-5}', '[(1,2),(3,4)]',
      '((0,0),(1,1))', 'a:* & b:AB', 'FFFFFFFF/FFFFFFFF', '-0', 1, '294276-12-31 23:59:59',
      '0001-01-01 00:00:00.123+00 BC', '{}', '[1:1][-1:0]={{1,2}}', '{-0.000}', '{}', '{"[]"}',
      '{-infinity}', '{}', '{"(,)"}', '{}'),
     (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    INSERT INTO w SELECT * FROM wvals WHERE id = 1;

    -- Keys of many types (the RocksDB key encoding), with values that print in more than
    -- one way or sort oddly: inserted, updated and deleted by the stream.
    CREATE TABLE keyed (t text, n numeric, f float8, f4 float4, b bytea, d date, u uuid,
                        ts timestamptz, bo bool, md mood, v int,
                        PRIMARY KEY (t, n, f, f4, b, d, u, ts, bo, md));
    CREATE TABLE keyvals (LIKE keyed);
    INSERT INTO keyvals VALUES
      ('', 0, 'NaN', 'NaN', '\x', '-infinity', '00000000-0000-0000-0000-000000000000',
           '-infinity', false, 'sad', 1),
      ('a', 'NaN', 'Infinity', '-Infinity', '\x00', 'infinity', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
           'infinity', true, 'ok', 2),
      ('a', 1.50, '-0', '-0', '\x00ff', '4713-01-01 BC', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
           '2000-01-01 00:00+00', true, 'with ''quote'' and space', 3),
      ('é🎉', -1e-300, 5e-324, 1e-45, '\xff', '2000-02-29', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12',
           '4713-01-01 00:00+00 BC', false, 'sad', 4),
      (E'x\ny', 123456789012345678901234567890.1, 0.1, 0.1, '\x0000', '0001-01-01',
           '10000000-0000-0000-0000-000000000000', '2000-01-01 00:00:00.000001+00', true, 'ok', 5);
    INSERT INTO keyed SELECT * FROM keyvals WHERE v = 1;
  )SQL");
  std::string store = temp_store(store_kind());
  sync_ok(src, store, {"--tables", "public.v,public.w,public.keyed"});
  for (const char* t : {"public.v", "public.w", "public.keyed"}) expect_table_equal(src, store, t);

  src.db().exec(
      "INSERT INTO w SELECT * FROM wvals WHERE id > 1;"
      "INSERT INTO w SELECT id + 10, r8, tsr, m4, mdr, mnr, mtz, mac8, pg, ci, ln, ls, pa, tq, lsn,"
      "  fd, di2, ts0, tstz3, ia3, lb, na, boa, ja, da, ua, ra, f4a FROM wvals;"
      "UPDATE w SET (r8, tsr, m4, mdr, mnr, mtz, mac8, pg, ci, ln, ls, pa, tq, lsn, fd, di2, ts0,"
      "  tstz3, ia3, lb, na, boa, ja, da, ua, ra, f4a) = (SELECT r8, tsr, m4, mdr, mnr, mtz, mac8,"
      "  pg, ci, ln, ls, pa, tq, lsn, fd, di2, ts0, tstz3, ia3, lb, na, boa, ja, da, ua, ra, f4a"
      "  FROM wvals WHERE wvals.id = w.id % 10 % 3 + 1) WHERE id > 10;"
      "INSERT INTO keyed SELECT * FROM keyvals WHERE v > 1;"
      "UPDATE keyed SET v = v * 10;"
      "UPDATE keyed SET f = 'Infinity', n = 'NaN' WHERE v = 10;"  // a key change
      "UPDATE keyed SET t = 'moved' WHERE v = 30;"
      "DELETE FROM keyed WHERE v IN (20, 40);");
  sync_ok(src, store);
  for (const char* t : {"public.w", "public.keyed"}) expect_table_equal(src, store, t);

  // Streamed: the same values inserted, then each value moved to another row by UPDATE.
  src.db().exec("INSERT INTO v SELECT id + 100, i2, i4, i8, b, n, n2, f4, f8, by, t, vc, ch, qc, nm,"
                " ia, ta, fa, ia2, ba, e, ea, d, dt, c, ca, r, nr, tr, dr, j, jb, ts, tz, dd, tm,"
                " ttz, iv, u, ip, cd, mac, bt, vb, mo, pt, bx, tsv, x, o FROM vals;");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.v");
  src.db().exec("UPDATE v SET (i2, i4, i8, b, n, n2, f4, f8, by, t, vc, ch, qc, nm, ia, ta, fa, ia2,"
                " ba, e, ea, d, dt, c, ca, r, nr, tr, dr, j, jb, ts, tz, dd, tm, ttz, iv, u, ip, cd,"
                " mac, bt, vb, mo, pt, bx, tsv, x, o) = (SELECT i2, i4, i8, b, n, n2, f4, f8, by, t,"
                " vc, ch, qc, nm, ia, ta, fa, ia2, ba, e, ea, d, dt, c, ca, r, nr, tr, dr, j, jb,"
                " ts, tz, dd, tm, ttz, iv, u, ip, cd, mac, bt, vb, mo, pt, bx, tsv, x, o"
                " FROM vals WHERE vals.id = (v.id % 100) % 5 + 1) WHERE id > 100;");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.v");
}

TEST_P(StreamTest, SchemaChangesBetweenSyncs) {
  TestDatabase src;
  src.db().exec("CREATE TABLE s (id int PRIMARY KEY, a text);"
                "INSERT INTO s SELECT i, 'a' || i FROM generate_series(1, 5) i;");
  std::string store = temp_store(store_kind());
  sync_ok(src, store);

  src.db().exec("ALTER TABLE s ADD COLUMN b int;"
                "INSERT INTO s VALUES (6, 'f', 60);"
                "UPDATE s SET b = 10 WHERE id = 1;");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.s");

  // Existing rows show the default although the WAL holds no change for them.
  src.db().exec("ALTER TABLE s ADD COLUMN c int DEFAULT 42;"
                "ALTER TABLE s ADD COLUMN d text NOT NULL DEFAULT 'x, \"y\"';"
                "INSERT INTO s (id, a) VALUES (7, 'g');"
                "INSERT INTO s (id, a, c) VALUES (8, 'h', 8);");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.s");
  EXPECT_EQ(src.db().value("SELECT count(*) FROM s WHERE c = 42"), "7");

  src.db().exec("ALTER TABLE s DROP COLUMN a;"
                "UPDATE s SET b = 2 WHERE id = 2;"
                "DELETE FROM s WHERE id = 3;");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.s");

  // Several shapes within one sync: add, use, drop, add again.
  src.db().exec("ALTER TABLE s ADD COLUMN e numeric DEFAULT 1.5;"
                "INSERT INTO s (id, b) VALUES (9, 9);"
                "ALTER TABLE s DROP COLUMN b;"
                "UPDATE s SET e = 2.5 WHERE id = 1;"
                "ALTER TABLE s ADD COLUMN f bool DEFAULT true;"
                "INSERT INTO s (id) VALUES (10);");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.s");
}

TEST_P(StreamTest, TableAddedToPublicationIsCopiedThenFollowed) {
  TestDatabase src;
  src.db().exec(
      "CREATE TABLE t1 (id int PRIMARY KEY, v text);"
      "CREATE TABLE t2 (id int PRIMARY KEY, v text);"
      "CREATE TABLE t3 (v text, n int);"  // no key: inserts only
      "INSERT INTO t1 SELECT i, 'one' FROM generate_series(1, 100) i;"
      "INSERT INTO t2 SELECT i, 'two' FROM generate_series(1, 1000) i;"
      "INSERT INTO t3 SELECT 'three', i FROM generate_series(1, 100) i;"
      "CREATE PUBLICATION p FOR TABLE t1;");
  std::string store = temp_store(store_kind());
  sync_ok(src, store, {"--publication", "p"});
  expect_table_equal(src, store, "public.t1");

  // Changes to t2 before it is published, then after (these are in the stream and in its
  // copy: they must count once).
  src.db().exec("UPDATE t2 SET v = 'before publish' WHERE id <= 10;"
                "ALTER PUBLICATION p ADD TABLE t2;"
                "INSERT INTO t2 VALUES (5000, 'after publish');"
                "UPDATE t2 SET v = 'after publish' WHERE id BETWEEN 11 AND 20;"
                "DELETE FROM t2 WHERE id BETWEEN 21 AND 30;"
                "INSERT INTO t1 VALUES (5000, 'x');");
  sync_ok(src, store, {"--publication", "p"});
  expect_table_equal(src, store, "public.t1");
  expect_table_equal(src, store, "public.t2");

  src.db().exec("UPDATE t2 SET v = 'followed' WHERE id % 2 = 0; DELETE FROM t2 WHERE id % 5 = 0;"
                "INSERT INTO t2 VALUES (6000, 'new');");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.t2");

  // Added while a sync streams: it sees the table first in the stream.
  std::string slot = store_status(store).slot;
  int pid = spawn_pgseed({"sync", "--follow", "--source", src.conninfo(), "--store", store},
                         temp_log_path());
  ASSERT_TRUE(wait_until([&] { return !slot_active_pid(src.db(), slot).empty(); }, 20));
  src.db().exec("ALTER PUBLICATION p ADD TABLE t3;"
                "BEGIN; INSERT INTO t3 VALUES ('in stream', 1); INSERT INTO t1 VALUES (7000, 'y'); COMMIT;"
                "INSERT INTO t3 VALUES ('in stream', 2);");
  std::string lsn = src.db().value("SELECT pg_current_wal_lsn()::text");
  EXPECT_TRUE(wait_confirmed(src.db(), slot, lsn));
  src.db().exec("INSERT INTO t3 SELECT 'after copy', i FROM generate_series(1, 50) i;"
                "UPDATE t2 SET v = 'during follow' WHERE id < 100;");
  lsn = src.db().value("SELECT pg_current_wal_lsn()::text");
  EXPECT_TRUE(wait_confirmed(src.db(), slot, lsn));
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_pid(pid), 0);
  for (const char* t : {"public.t1", "public.t2", "public.t3"}) expect_table_equal(src, store, t);
}

TEST_P(StreamTest, SlotConfirmsWhatTheStoreApplied) {
  TestDatabase src;
  src.db().exec("CREATE TABLE t (id int PRIMARY KEY, v text);"
                "INSERT INTO t SELECT i, 'v' FROM generate_series(1, 100) i;");
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  StoreStatus st = store_status(store);
  ASSERT_FALSE(st.slot.empty());
  EXPECT_EQ(st.phase, "streaming");
  EXPECT_EQ(slot_confirmed(src.db(), st.slot), st.applied_lsn);

  std::string before = st.applied_lsn;
  src.db().exec("UPDATE t SET v = 'w' WHERE id < 50; INSERT INTO t VALUES (500, 'x');");
  std::string written = src.db().value("SELECT pg_current_wal_lsn()::text");
  sync_ok(src, store);
  st = store_status(store);
  EXPECT_GT(lsn_value(st.applied_lsn), lsn_value(before));
  EXPECT_GE(lsn_value(st.applied_lsn), lsn_value(written))
      << "applied " << st.applied_lsn << " is before the WAL written when the sync began " << written;
  EXPECT_EQ(slot_confirmed(src.db(), st.slot), st.applied_lsn);
  expect_table_equal(src, store, "public.t");

  // Nothing to apply: the store and the slot still agree, and neither goes back.
  sync_ok(src, store);
  StoreStatus again = store_status(store);
  EXPECT_GE(lsn_value(again.applied_lsn), lsn_value(st.applied_lsn));
  EXPECT_EQ(slot_confirmed(src.db(), again.slot), again.applied_lsn);
}

// The apply path's fast cases: updates that keep their key (matched, not SET), also on a
// table whose every column is in the key, and a batch large enough to be committed on a
// helper thread while the stream goes on behind it (more transactions follow it).
TEST_P(StreamTest, LargeBatchThenSmallTransactionsKeepingKeys) {
  TestDatabase src;
  src.db().exec(
      "CREATE TABLE t (id int PRIMARY KEY, a text, b int);"
      "CREATE TABLE k (k1 int, k2 int, PRIMARY KEY (k1, k2));"
      "INSERT INTO k SELECT i % 7, i FROM generate_series(1, 50) i;"
      "CREATE PROCEDURE small_txns(n int) LANGUAGE plpgsql AS $$"
      " BEGIN FOR i IN 1..n LOOP"
      "   UPDATE t SET b = b + 1, a = a || '+' WHERE id = 1 + (i * 7919) % 150000;"
      "   IF i % 3 = 0 THEN UPDATE t SET id = -i WHERE id = 150000 - i; END IF;"
      "   IF i % 5 = 0 THEN DELETE FROM t WHERE id = 140000 - i; END IF;"
      "   COMMIT;"
      " END LOOP; END $$;");
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  src.db().exec(
      "INSERT INTO t SELECT i, 'row ' || i, i FROM generate_series(1, 150000) i;"
      "UPDATE k SET k1 = k1;"                     // every column is key, none moves
      "UPDATE k SET k2 = k2 + 100 WHERE k1 = 1;");  // the key moves
  src.db().exec("CALL small_txns(3000);");  // its own statement: it commits inside
  sync_ok(src, store);
  expect_table_equal(src, store, "public.t");
  expect_table_equal(src, store, "public.k");
}

// One source transaction of a million rows: applied in bounded memory.
TEST_P(StreamTest, MillionRowTransaction) {
  TestDatabase src;
  src.db().exec("CREATE TABLE m (id int PRIMARY KEY, v int);");
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  src.db().exec("INSERT INTO m SELECT i, i % 1000 FROM generate_series(1, 1000000) i;");
  long rss_kb = 0;
  RunResult r = run_pgseed_alone({"sync", "--source", src.conninfo(), "--store", store}, rss_kb);
  ASSERT_EQ(r.exit_code, 0) << "pgseed sync failed: " << r.err;
  std::cout << "[ rss      ] " << store_kind() << ": one-shot sync applying a 1M-row transaction: peak RSS "
            << rss_kb / 1024 << " MB (" << rss_kb << " kB)" << std::endl;
  RecordProperty("peak_rss_kb", std::to_string(rss_kb));
  EXPECT_LT(rss_kb, 100 * 1024) << "pgseed used more than 100 MB applying one large transaction";
  expect_table_equal(src, store, "public.m");
}

// One-shot mode applies everything committed before it started, also when the walsender
// says nothing for seconds while it decodes a large transaction of unpublished rows that
// stands before it. (The apply loop's stopping rule does not depend on the store: SQLite.)
TEST(StreamOneShotTest, WaitsBehindLargeUnpublishedTransaction) {
  TestDatabase src;
  src.db().exec("CREATE TABLE pub (id int PRIMARY KEY, v text);"
                "CREATE TABLE unpub (n int);"
                "CREATE PUBLICATION p FOR TABLE pub;");
  std::string store = temp_store("sqlite");
  sync_ok(src, store, {"--publication", "p"});
  src.db().exec("BEGIN; INSERT INTO unpub SELECT generate_series(1, 2000000);"
                "INSERT INTO pub VALUES (1, 'in the large transaction'); COMMIT;"
                "INSERT INTO pub VALUES (2, 'after it');");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.pub");
}

INSTANTIATE_TEST_SUITE_P(Stores, StreamTest, ::testing::ValuesIn(test_support::kStoreKinds));

}  // namespace pgseed::test
