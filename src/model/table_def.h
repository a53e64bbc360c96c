// The shape of a replicated table, as the store records it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/pg_type.h"
#include "pgseed/lsn.h"

namespace pgseed {

struct ColumnDef {
  std::string name;
  uint32_t type_oid = 0;   // the column's declared type (a domain, an enum, ...)
  uint32_t base_type_oid = 0;  // type_oid with domains resolved to their base type
  std::string type_name;   // format_type(), e.g. "numeric(10,2)", "public.mood"
  StorageClass storage = StorageClass::kText;
  int key_position = 0;    // 1-based position in the primary key / replica identity; 0: not a key column
  // The column's identity on the source: pg_attribute.attnum, stable across renames and
  // never reused after a DROP COLUMN. 0: unknown (a store written before pgseed kept it).
  int attnum = 0;
  int32_t type_mod = -1;   // pg_attribute.atttypmod (as pgoutput's Relation message sends it)
};

struct TableDef {
  uint32_t id = 0;          // the store's own id for the table (assigned by Store::create_table)
  uint32_t source_oid = 0;  // the relation's OID on the source (pgoutput's relation id)
  std::string schema;
  std::string name;
  // The SQLite store's name for the table in its file, as recorded in
  // _pgseed_tables.sqlite_name (see sqlite_store.h for how it is chosen). Set by the store
  // (create_table, tables()); the store finds its tables by id and never takes this from
  // a caller. Empty in a RocksDB store.
  std::string sqlite_name;
  std::vector<ColumnDef> columns;
  // The point of the snapshot the table was copied under: streamed transactions that
  // committed before it are already in the copy and are skipped for this table.
  Lsn snapshot_lsn;
  // pg_class.relfilenode as the copy's snapshot saw it: a rewrite (ALTER COLUMN TYPE ...
  // USING, a volatile default, VACUUM FULL) or a TRUNCATE gives the table a new one, and
  // a rewrite leaves no row change in the WAL. 0: unknown (or a partitioned table).
  uint32_t relfilenode = 0;
  // Whether this shape (columns by name, type, type modifier, attnum where known, key)
  // equals `other`'s. Table names and ids are not compared.
  bool same_columns(const TableDef& other) const;
  // The copy point of a table that waits to be copied again (`pgseed resync`, a reseed
  // under a new slot): no streamed change applies to it (should_apply) until its new
  // copy is in place; until then its old rows stay readable.
  static constexpr Lsn kAwaitingCopy = Lsn(~uint64_t{0});
  bool awaiting_copy() const { return snapshot_lsn == kAwaitingCopy; }

  // True when the table has a primary key or replica identity index; false for
  // REPLICA IDENTITY FULL tables without one (rows are then matched on all columns).
  bool has_key() const {
    for (const auto& c : columns)
      if (c.key_position > 0) return true;
    return false;
  }
  // "schema.table" with each part quoted as PostgreSQL needs.
  std::string qualified() const;
};

}  // namespace pgseed
