// The per-table rules of sync/table_sync.h: which changes apply to a table, and which
// descriptions of it (a Relation message, the catalog) make it be copied again.
#include <gtest/gtest.h>

#include "sync/table_sync.h"

namespace pgseed {
namespace {

TableDef stored() {
  TableDef t;
  t.schema = "public";
  t.name = "t";
  t.source_oid = 16384;
  t.snapshot_lsn = Lsn(1000);
  t.relfilenode = 16390;
  ColumnDef id{"id", 23, 23, "integer", StorageClass::kInteger, 1, 1, -1};
  ColumnDef v{"v", 1700, 1700, "numeric(10,2)", StorageClass::kText, 0, 3, 655366};
  t.columns = {id, v};
  return t;
}

Relation relation_of(const TableDef& t, char identity = 'd') {
  Relation r;
  r.oid = t.source_oid;
  r.nspname = t.schema;
  r.relname = t.name;
  r.replica_identity = identity;
  for (const auto& c : t.columns) r.columns.push_back({c.key_position > 0, c.name, c.type_oid, c.type_mod});
  return r;
}

TEST(ShouldApply, ChangesFromTheCopyPointOn) {
  TableDef t = stored();
  EXPECT_FALSE(should_apply(t, Lsn(999)));  // committed before the copy's snapshot: in the copy
  EXPECT_TRUE(should_apply(t, Lsn(1000)));
  EXPECT_TRUE(should_apply(t, Lsn(5000)));
}

TEST(RelationDiffers, SameShapeIsNoChange) {
  TableDef t = stored();
  EXPECT_FALSE(relation_differs(t, relation_of(t)));
  // REPLICA IDENTITY FULL flags every column: the key is not compared then.
  Relation full = relation_of(t, 'f');
  for (auto& c : full.columns) c.key = true;
  EXPECT_FALSE(relation_differs(t, full));
}

TEST(RelationDiffers, EveryShapeChangeIsOne) {
  TableDef t = stored();
  Relation r = relation_of(t);
  r.columns[1].name = "w";  // RENAME COLUMN
  EXPECT_TRUE(relation_differs(t, r));
  r = relation_of(t);
  r.columns[1].type_oid = 25;  // ALTER COLUMN TYPE text
  EXPECT_TRUE(relation_differs(t, r));
  r = relation_of(t);
  r.columns[1].type_mod = 786438;  // numeric(10,2) -> numeric(12,2): values are rewritten
  EXPECT_TRUE(relation_differs(t, r));
  r = relation_of(t);
  r.relname = "t2";  // RENAME TO
  EXPECT_TRUE(relation_differs(t, r));
  r = relation_of(t);
  r.columns.push_back({false, "x", 23, -1});  // ADD COLUMN
  EXPECT_TRUE(relation_differs(t, r));
  r = relation_of(t);
  r.columns.pop_back();  // DROP COLUMN
  EXPECT_TRUE(relation_differs(t, r));
  r = relation_of(t);
  r.columns[1].key = true;  // another replica identity index
  EXPECT_TRUE(relation_differs(t, r));
}

TEST(RelationDiffers, TypeModifierUnknownInOlderStores) {
  TableDef t = stored();
  for (auto& c : t.columns) c.attnum = 0, c.type_mod = -1;  // written before attnums were kept
  Relation r = relation_of(stored());
  EXPECT_FALSE(relation_differs(t, r));
}

TEST(CatalogDiffers, ByAttnumNameTypeAndKey) {
  TableDef t = stored();
  TableDef c = stored();
  EXPECT_FALSE(catalog_differs(t, c));
  c.columns[1].attnum = 4;  // dropped and added again under the same name and type
  EXPECT_TRUE(catalog_differs(t, c));
  c = stored();
  c.columns[0].key_position = 0;  // the primary key was dropped
  EXPECT_TRUE(catalog_differs(t, c));
  c = stored();
  c.relfilenode = 99999;  // rewritten (ALTER COLUMN TYPE ... USING) or truncated
  EXPECT_TRUE(catalog_differs(t, c));
  c = stored();
  c.schema = "other";  // ALTER TABLE ... SET SCHEMA
  EXPECT_TRUE(catalog_differs(t, c));
  c = stored();
  c.columns.clear();  // every column dropped
  EXPECT_TRUE(catalog_differs(t, c));
}

}  // namespace
}  // namespace pgseed
