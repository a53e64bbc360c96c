#include "sync/table_sync.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <tuple>

#include "pg/connection.h"
#include "pg/replication_connection.h"
#include "store/store_txn.h"
#include "sync/failpoint.h"
#include "sync/initial_copy.h"

namespace pgseed {

bool relation_differs(const TableDef& stored, const Relation& r) {
  if (r.nspname != stored.schema || r.relname != stored.name) return true;
  if (r.columns.size() != stored.columns.size()) return true;
  // The replica identity flags say which columns identify a row; with REPLICA IDENTITY
  // FULL every column is flagged, so the key is only compared for a key identity.
  bool key_identity = r.replica_identity == 'd' || r.replica_identity == 'i';
  for (size_t i = 0; i < r.columns.size(); ++i) {
    const RelationColumn& m = r.columns[i];
    const ColumnDef& c = stored.columns[i];
    if (m.name != c.name || m.type_oid != c.type_oid) return true;
    if (c.attnum != 0 && m.type_mod != c.type_mod) return true;
    if (key_identity && m.key != (c.key_position > 0)) return true;
  }
  return false;
}

bool catalog_differs(const TableDef& stored, const TableDef& catalog, bool with_filenodes) {
  if (stored.schema != catalog.schema || stored.name != catalog.name) return true;
  if (with_filenodes && stored.relfilenode != 0 && catalog.relfilenode != 0 &&
      stored.relfilenode != catalog.relfilenode)
    return true;
  return !stored.same_columns(catalog);
}

std::vector<pg::PublishedTable*> in_creation_order(std::vector<pg::PublishedTable>& tables) {
  std::vector<pg::PublishedTable*> out;
  for (auto& t : tables) out.push_back(&t);
  std::sort(out.begin(), out.end(), [](const pg::PublishedTable* a, const pg::PublishedTable* b) {
    return std::tie(a->def.schema, a->def.name) < std::tie(b->def.schema, b->def.name);
  });
  return out;
}

void retry_while_ddl_races(const Logger& log, const std::function<bool(int)>& attempt) {
  constexpr int kAttempts = 10;
  for (int n = 1;; ++n) {
    try {
      if (attempt(n)) return;
    } catch (const Error& e) {
      if (!pg::changed_since_snapshot(e) || n >= kAttempts) throw;
    }
    if (n >= kAttempts)
      throw Error(ErrorCategory::kSourceState,
                  "tables keep changing while they are copied (" + std::to_string(kAttempts) +
                      " snapshots in a row saw DDL on them); try again later");
    log.info("a table changed on the source while it was being copied: copying it again");
  }
}

TableSync::Outcome TableSync::sync(Store& store, const StoreState& state,
                                   const std::vector<uint32_t>& oids,
                                   const std::function<void()>& tick) {
  Outcome out;
  retry_while_ddl_races(log_, [&](int) {
    std::optional<Outcome> o = try_sync(store, state, oids, tick);
    if (o) out = std::move(*o);
    return o.has_value();
  });
  return out;
}

std::optional<TableSync::Outcome> TableSync::try_sync(Store& store, const StoreState& state,
                                                      const std::vector<uint32_t>& oids,
                                                      const std::function<void()>& tick) {
  Outcome out;
  if (oids.empty()) return out;
  // A snapshot of its own, from a temporary slot: its consistent point P splits the
  // stream for these tables into what the copy holds (transactions committed before P)
  // and what is applied after it (see should_apply). The slot goes with the connection.
  char name[64];
  std::snprintf(name, sizeof name, "pgseed_tmp_%d_%u", int(getpid()), ++serial_);
  pg::ReplicationConnection repl = pg::ReplicationConnection::open(conninfo_);
  SlotCreationContext slots = slots_;
  slots.tick = tick;  // the caller's stream is answered while a standby's slot is awaited
  pg::CreatedSlot slot = create_source_slot(repl, name, {.temporary = true}, slots, log_);
  out.point = slot.consistent_point;
  InitialCopy copy(conninfo_, 1, log_);
  copy.import_snapshot(slot.snapshot_name);
  { pg::ReplicationConnection done = std::move(repl); }  // every worker holds the snapshot now

  std::vector<pg::PublishedTable> tables = copy.published_tables(state.publication, oids);
  if (!copy.changed_since_snapshot(tables).empty()) return std::nullopt;
  std::vector<TableDef> stored = store.tables();

  StoreTxn txn(store);
  for (const TableDef& s : stored) {
    if (std::find(oids.begin(), oids.end(), s.source_oid) == oids.end()) continue;
    bool published = std::any_of(tables.begin(), tables.end(), [&](const pg::PublishedTable& t) {
      return t.def.source_oid == s.source_oid;
    });
    store.drop_table(s);
    if (!published) out.dropped.push_back(s.qualified());
  }
  for (pg::PublishedTable* t : in_creation_order(tables)) {
    t->def.snapshot_lsn = out.point;
    store.create_table(t->def);  // replaces a stored table of the same name
    out.copied.push_back(t->def.qualified());
  }
  if (tick) copy.set_tick(tick);
  copy.run(store, tables, /*own_transactions=*/false);
  store.write_state(state);
  failpoint("table-sync-before-commit");  // copied, not committed: the store must not show it
  txn.commit();
  return out;
}

}  // namespace pgseed
