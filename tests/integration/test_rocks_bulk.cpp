// The RocksDB store's bulk load of the initial copy (rows written to SST files and
// ingested at the end): tables whose physical order is not their key order (two
// interleaved increasing runs, a random order that overflows the runs into the sort
// buffer, a keyless table) copy exactly, and changes streamed afterwards apply on top of
// the ingested rows.
#include "harness.h"

namespace pgseed::test {

namespace {

TEST(RocksBulkLoad, OutOfOrderTablesCopyExactlyAndTakeLaterChanges) {
  TestDatabase src;
  src.db().exec(R"SQL(
    -- Two increasing id runs interleaved in chunks of 500 rows, as two sessions inserting
    -- at once leave them in the heap.
    CREATE TABLE inter (id int PRIMARY KEY, t text NOT NULL);
    INSERT INTO inter
      SELECT g, 'inter ' || g || ' ' || md5(g::text) FROM generate_series(1, 60000) g
      ORDER BY ((g - 1) % 30000) / 500, g > 30000, g;
    -- Random order: most rows fit no run and go through the sort buffer (>= 8 MB of them).
    CREATE TABLE shuffled (id int PRIMARY KEY, t text NOT NULL);
    INSERT INTO shuffled
      SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 120000) g ORDER BY random();
    -- No key: rows are keyed by their values, duplicates kept apart.
    CREATE TABLE keyless (a int, b text);
    ALTER TABLE keyless REPLICA IDENTITY FULL;
    INSERT INTO keyless SELECT g % 100, 'k' || (g % 37) FROM generate_series(1, 20000) g;
  )SQL");
  std::string store = temp_store("rocksdb");
  sync_ok(src, store);
  for (const char* t : {"public.inter", "public.shuffled", "public.keyless"})
    expect_table_equal(src, store, t);

  src.db().exec(R"SQL(
    UPDATE inter SET t = 'updated' WHERE id % 13 = 0;
    DELETE FROM inter WHERE id % 11 = 0;
    UPDATE shuffled SET t = 'updated' WHERE id % 7 = 0;
    DELETE FROM shuffled WHERE id % 5 = 0;
    INSERT INTO shuffled VALUES (200000, 'new');
    DELETE FROM keyless WHERE a = 3;
    UPDATE keyless SET b = 'changed' WHERE a = 4;
    INSERT INTO keyless VALUES (5, 'k5'), (5, 'k5');
  )SQL");
  sync_ok(src, store);
  for (const char* t : {"public.inter", "public.shuffled", "public.keyless"})
    expect_table_equal(src, store, t);
}

}  // namespace

}  // namespace pgseed::test
