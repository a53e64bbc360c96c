// TableSync: brings single tables into the store under snapshots of their own while the
// stream goes on for the others — a table added to the publication, a table whose shape
// changed in a way the store cannot follow in place, a table the store no longer matches.
// The model is PostgreSQL's tablesync.c: each table has its own copy point.
//
// The per-table rule (should_apply) and what a Relation message or the catalog says about
// a stored table (needs_resync) are pure functions, so that they can be read and tested
// apart from the connections that feed them.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "decode/pgoutput.h"
#include "pg/catalog.h"
#include "pgseed/lsn.h"
#include "store/store.h"
#include "sync/logger.h"
#include "sync/slot_creation.h"

namespace pgseed {

// Whether a change of a source transaction whose commit record starts at `commit_lsn`
// applies to the stored table `t`. A table holds every transaction that committed before
// its copy point (the consistent point of the snapshot it was copied under: the slot's
// for the first copy, a temporary slot's for a table copied later): such a transaction's
// changes are in the copy already and are skipped for this table. Transactions that
// commit at or after the copy point were not visible to the snapshot and are applied.
// (The store-wide rule, applied before this one: a transaction starting before the
// store's applied LSN is stored already and is skipped as a whole.)
inline bool should_apply(const TableDef& t, Lsn commit_lsn) { return commit_lsn >= t.snapshot_lsn; }

// Whether the Relation message `r` (sent in a transaction that applies to `stored`)
// describes a shape other than the stored one: another name or schema, other columns by
// name, type or type modifier, another replica identity key. Any such difference is
// followed by copying the table again under a fresh snapshot (a resync), which is exact
// whatever the DDL was: a rename, a type change with a rewrite, DROP EXPRESSION, a column
// added with a volatile default — none of which leave row changes in the WAL.
bool relation_differs(const TableDef& stored, const Relation& r);

// Whether the catalog's description of a published table differs from the stored one
// (names, columns by attnum, name, type, type modifier, key). Catches what no Relation
// message announces: DDL that no row change followed, or a column dropped and added
// again under the same name and type.
// `with_filenodes`: also a relfilenode that changed (a rewrite that kept the shape).
bool catalog_differs(const TableDef& stored, const TableDef& catalog, bool with_filenodes = true);

// `tables` in the order the store creates them: by schema, then name, bytewise. Where two
// source names would give one SQLite table name, the table created first keeps the plain
// name (sqlite_store.h): so that depends on the names alone, not on sizes or OIDs.
std::vector<pg::PublishedTable*> in_creation_order(std::vector<pg::PublishedTable>& tables);

// Runs `attempt(n)` (n = 1, 2, ...) until it returns true. DDL that commits between a
// copy's snapshot and its lock on a table would make the copy wrong (a rewritten table is
// empty to an older snapshot) or fail (a renamed column): an attempt that saw it (false, or
// an Error that pg::changed_since_snapshot recognises) is made again under a newer
// snapshot, up to 10 times; then one clear error.
void retry_while_ddl_races(const Logger& log, const std::function<bool(int)>& attempt);

class TableSync {
 public:
  // `slots`: how the temporary slots of the snapshots are made (a standby's primary, the
  // stop flag: a stop while a slot is awaited throws CopyInterrupted, nothing written).
  TableSync(const std::string& conninfo, const Logger& log, SlotCreationContext slots = {})
      : conninfo_(conninfo), log_(log), slots_(std::move(slots)) {}

  // Brings the tables with source OIDs `oids` in line with the source, as of a fresh
  // snapshot P (a temporary slot's exported snapshot) in one store transaction that also
  // writes `state`: each one still published at P is copied as of P (replacing the stored
  // table of that OID and any stored table of the same name; its copy point is P); each
  // one no longer published at P (dropped, or removed from the publication) is dropped
  // from the store. `tick` is called about once a second while rows are copied (the
  // caller answers its walsender). Returns what happened, for logs and callbacks.
  struct Outcome {
    std::vector<std::string> copied;   // qualified names
    std::vector<std::string> dropped;  // qualified names as they were stored
    Lsn point;
  };
  Outcome sync(Store& store, const StoreState& state, const std::vector<uint32_t>& oids,
               const std::function<void()>& tick = {});

 private:
  // One attempt; nullopt when a table changed after the snapshot (nothing is written).
  std::optional<Outcome> try_sync(Store& store, const StoreState& state,
                                  const std::vector<uint32_t>& oids, const std::function<void()>& tick);

  std::string conninfo_;
  const Logger& log_;
  SlotCreationContext slots_;
  unsigned serial_ = 0;
};

}  // namespace pgseed
