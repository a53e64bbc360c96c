// The shortest path through pgseed: copy, change, catch up.
#include "store_kinds.h"
#include "harness.h"

namespace pgseed::test {

TEST_P(StoreTest, CopyThenStreamSmallTable) {
  TestDatabase src;
  src.db().exec("CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(10,2));"
                "INSERT INTO items SELECT i, 'item ' || i, i * 1.5 FROM generate_series(1, 1000) i;");
  std::string store = temp_store(store_kind());
  sync_ok(src, store);
  expect_table_equal(src, store, "public.items");
  src.db().exec("UPDATE items SET name = 'changed' WHERE id % 7 = 0; DELETE FROM items WHERE id % 11 = 0;"
                "INSERT INTO items VALUES (5000, 'new', 1);");
  sync_ok(src, store);
  expect_table_equal(src, store, "public.items");
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreTest, ::testing::ValuesIn(test_support::kStoreKinds));

}  // namespace pgseed::test
