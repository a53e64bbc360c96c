// Sync::run — the one path (DESIGN.md "How it works"): slot + exported snapshot, initial
// copy, then streaming; or, on later runs, resume streaming from the store's LSN.
#include "pgseed/sync.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>

#include "pg/catalog.h"
#include "pg/connection.h"
#include "model/identifiers.h"
#include "pg/conninfo.h"
#include "pg/replication_connection.h"
#include "pgseed/error.h"
#include "store/store.h"
#include "store/store_txn.h"
#include "sync/edge_sync.h"
#include "sync/hub_publisher.h"
#include "sync/initial_copy.h"
#include "sync/logger.h"
#include "sync/slot_creation.h"
#include "sync/source_identity.h"
#include "sync/stream_apply.h"
#include "sync/table_sync.h"

namespace pgseed {

namespace {

// pgseed_<host>_<8 hex digits>: whose slot it is shows in pg_replication_slots. The host
// name is folded to [a-z0-9_] and cut so that the name fits PostgreSQL's 63 bytes.
std::string generated_slot_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  std::string h;
  for (const char* c = host; *c && *c != '.'; ++c) {
    char l = char(std::tolower(static_cast<unsigned char>(*c)));
    bool ok = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9');
    if (ok) h += l;
    else if (!h.empty() && h.back() != '_') h += '_';
  }
  while (!h.empty() && h.back() == '_') h.pop_back();
  constexpr size_t kMaxHost = 63 - (sizeof "pgseed__" - 1) - 8;
  if (h.size() > kMaxHost) h.resize(kMaxHost);
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", unsigned(rd()));
  return "pgseed_" + (h.empty() ? std::string() : h + "_") + suffix;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// Tables that PostgreSQL refuses UPDATE and DELETE on while `publication` publishes them
// (no replica identity): named in one warning, with what to run.
void warn_tables_without_identity(pg::Connection& conn, const std::string& publication,
                                  const Logger& log) {
  std::vector<std::string> keyless = pg::tables_without_replica_identity(conn, publication);
  if (keyless.empty()) return;
  log.warn("publication " + publication + " publishes " + std::to_string(keyless.size()) +
           (keyless.size() == 1 ? " table" : " tables") + " without a replica identity: " +
           join(keyless) + "; while they are published, PostgreSQL refuses UPDATE and DELETE on " +
           (keyless.size() == 1 ? "it" : "them") + " (for every client): add a primary key, or run ALTER TABLE " +
           keyless.front() + " REPLICA IDENTITY FULL");
}

// Inactive pgseed slots retain WAL without bound: an abandoned replica's slot is the main
// operational danger (DESIGN.md). Listed at each sync, beside this store's own.
constexpr int64_t kRetentionWorthAWarning = int64_t(16) << 20;

void warn_inactive_slots(pg::Connection& conn, const std::string& own_slot, const Logger& log) {
  std::vector<std::string> listed;
  for (const auto& s : pg::inactive_pgseed_slots(conn, own_slot))
    if (s.retained_bytes >= kRetentionWorthAWarning)
      listed.push_back(s.slot + " (" + std::to_string(s.retained_bytes >> 20) + " MB" +
                       (s.database.empty() ? "" : ", database " + s.database) + ")");
  if (listed.empty()) return;
  log.warn("inactive pgseed slots retain WAL on the source: " + join(listed) +
           "; if their replicas are gone, drop them with: pgseed drop --slot NAME");
}

// A --source with several hosts is how a promotion is ridden through: libpq must then be
// asked for the one that takes writes, or a reconnect after a failover may reach a standby
// (or an old primary back as one) instead of the new primary. Not said when the source is
// a standby on purpose.
void warn_hosts_without_write_target(pg::Connection& conn, const SyncOptions& o, const Logger& log) {
  pg::HostChoice c = pg::host_choice(pg::normalize_conninfo(o.source));
  if (c.hosts < 2 || c.writable_only || !o.primary.empty() || pg::in_recovery(conn)) return;
  log.warn("--source names " + std::to_string(c.hosts) + " hosts without "
           "target_session_attrs=read-write: after a failover pgseed may connect to a standby "
           "instead of the new primary (add target_session_attrs=read-write)");
}

// Refuses a store made from another cluster or database, or with other names.
void check_identity(const StoreState& st, const pg::SystemIdentity& id, const SyncOptions& o,
                    const std::string& store) {
  require_same_source(st, id, store);
  if (!o.slot.empty() && o.slot != st.slot)
    throw Error(ErrorCategory::kConfiguration,
                "store " + store + " uses slot " + st.slot + ", not " + o.slot);
  if (!o.publication.empty() && o.publication != st.publication)
    throw Error(ErrorCategory::kConfiguration,
                "store " + store + " uses publication " + st.publication + ", not " + o.publication);
}

// A later run's --tables / --all-tables against the store's publication: never ignored.
// Equal: nothing to do. Tables added to a publication pgseed created (a FOR TABLE list):
// ALTER PUBLICATION ... ADD TABLE, and the stream session copies them before it streams
// (StreamApply::session). Anything else (a table left out, a publication pgseed did not
// create, FOR ALL TABLES) is refused: changing it silently would change what replicates.
void reconcile_tables(pg::Connection& conn, const StoreState& st, const SyncOptions& o,
                      const std::string& store, const Logger& log) {
  if (o.tables.empty() && !o.all_tables) return;
  pg::PublicationInfo pub = pg::publication_info(conn, st.publication);
  if (!pub.exists) return;  // the copy recreates it, or streaming reports it missing
  if (o.all_tables) {
    if (pub.all_tables) return;
    throw Error(ErrorCategory::kConfiguration,
                "store " + store + " replicates publication " + st.publication +
                    ", which does not publish all tables; --all-tables cannot change that "
                    "(sync into a new store for that)");
  }
  if (!st.created_publication || pub.all_tables || pub.has_schemas)
    throw Error(ErrorCategory::kConfiguration,
                "store " + store + " replicates publication " + st.publication + " (" +
                    (pub.all_tables ? "FOR ALL TABLES" : "not created by pgseed") +
                    "); its tables are what is replicated, so --tables cannot change them: "
                    "run the sync without --tables, or change the publication itself");
  std::vector<uint32_t> wanted;
  std::vector<std::string> added;
  for (const auto& name : o.tables) {
    QualifiedName n = parse_qualified_name(name);
    uint32_t oid = pg::table_oid(conn, n);
    if (oid == 0)
      throw Error(ErrorCategory::kConfiguration, "--tables names " + name +
                                                     ", which does not exist on the source");
    wanted.push_back(oid);
    if (std::find(pub.relids.begin(), pub.relids.end(), oid) == pub.relids.end())
      added.push_back(quote_ident(n.schema) + "." + quote_ident(n.name));
  }
  std::vector<std::string> left_out;
  for (uint32_t oid : pub.relids)
    if (std::find(wanted.begin(), wanted.end(), oid) == wanted.end())
      left_out.push_back(conn.query_value(
          "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c "
          "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
          {std::to_string(oid)}));
  if (!left_out.empty())
    throw Error(ErrorCategory::kConfiguration,
                "store " + store + " replicates " + join(left_out) + ", which --tables leaves out; " +
                    "pgseed does not remove tables from a replica: name them too, or sync into a new store");
  if (added.empty()) return;
  if (pg::in_recovery(conn))
    throw Error(ErrorCategory::kConfiguration,
                "the source is a hot standby, where publication " + st.publication +
                    " cannot be changed: add the tables on the primary (ALTER PUBLICATION " +
                    quote_ident(st.publication) + " ADD TABLE " + join(added) +
                    "), then sync again once the standby has replayed it");
  conn.exec("ALTER PUBLICATION " + quote_ident(st.publication) + " ADD TABLE " + join(added),
            ("adding tables to publication " + st.publication).c_str());
  log.info("added " + join(added) + " to publication " + st.publication + "; copying before streaming");
  warn_tables_without_identity(conn, st.publication, log);
}

// What an initial copy stored: tables whose copy point is committed, rows.
struct CopyTally {
  size_t tables = 0;
  uint64_t rows = 0;
};

// Copies into the bulk load the publication's tables that the store does not hold yet,
// under the snapshot that `slot` exported (held by `exporter`, closed once every worker
// has imported it); each table's copy point is the slot's consistent point. With
// `check_ddl` (a snapshot taken now, with the copy's locks taken after it), nothing is
// copied and false is returned when DDL changed one of the tables after the snapshot.
bool copy_missing_tables(Store& store, pg::ReplicationConnection exporter,
                         const pg::CreatedSlot& slot, const std::string& publication,
                         bool check_ddl, const SyncOptions& o, const Logger& log,
                         const std::atomic<bool>& stop, CopyTally& tally) {
  InitialCopy copy(o.source, o.jobs, log, o.on_progress, o.split_tables_larger_than);
  copy.import_snapshot(slot.snapshot_name);

  std::vector<TableDef> held = store.tables();
  std::vector<pg::PublishedTable> tables;
  for (auto& t : copy.published_tables(publication))
    if (std::none_of(held.begin(), held.end(),
                     [&](const TableDef& h) { return h.source_oid == t.def.source_oid; }))
      tables.push_back(std::move(t));
  if (check_ddl && !copy.changed_since_snapshot(tables).empty()) return false;
  copy.connect_workers(tables);
  { pg::ReplicationConnection done = std::move(exporter); }  // every worker holds the snapshot now
  if (tables.empty() && held.empty()) log.warn("publication " + publication + " publishes no tables");
  {
    StoreTxn txn(store);
    for (pg::PublishedTable* t : in_creation_order(tables)) {
      t->def.snapshot_lsn = TableDef::kAwaitingCopy;  // until its rows are all stored
      store.create_table(t->def);
      t->def.snapshot_lsn = slot.consistent_point;
    }
    txn.commit();
  }
  try {
    copy.run(store, tables, /*own_transactions=*/true, &stop);
  } catch (...) {
    tally.tables += copy.tables_committed();
    throw;
  }
  tally.tables += copy.tables_committed();
  tally.rows += copy.rows_copied();
  return true;
}

// The copy of the tables an interrupted copy left (or that DDL made the first snapshot
// miss), each attempt under a fresh snapshot of a temporary slot: its consistent point P
// is those tables' copy point, and the stream, which starts at the slot's consistent
// point, skips their changes before P (should_apply). Before each attempt after a failed
// one (and before the first with `restart`), the store's bulk load is begun again, which
// keeps the tables whose copy was committed and drops the others.
void copy_under_new_snapshots(Store& store, const std::string& publication, bool restart,
                              const SyncOptions& o, const Logger& log,
                              const std::atomic<bool>& stop, CopyTally& tally) {
  retry_while_ddl_races(log, [&](int attempt) {
    if (restart || attempt > 1) {
      store.abort_bulk_load();
      store.begin_bulk_load();
    }
    pg::ReplicationConnection repl = pg::ReplicationConnection::open(o.source);
    char name[64];
    std::snprintf(name, sizeof name, "pgseed_tmp_%d_copy%d", int(getpid()), attempt);
    pg::CreatedSlot snap = create_source_slot(repl, name, {.temporary = true},
                                              {.primary = o.primary, .stop = &stop}, log);
    return copy_missing_tables(store, std::move(repl), snap, publication, /*check_ddl=*/true, o,
                               log, stop, tally);
  });
}

// Whether the slot of an interrupted first copy can carry it on: it exists, is pgoutput's,
// and has not lost WAL it needs.
bool slot_can_resume(pg::Connection& conn, const StoreState& st) {
  if (st.slot.empty() || !st.consistent_point.valid()) return false;
  std::optional<pg::SlotStatus> s = pg::slot_status(conn, st.slot, st.consistent_point);
  return s && s->plugin == "pgoutput" && s->wal_status != "lost";
}

// An interrupted first copy whose slot is still there: the tables it finished are kept
// (never read from the source again), the others are copied, then streaming starts at the
// slot's consistent point.
void resume_initial_sync(Store& store, StoreState st, const SyncOptions& o, const Logger& log,
                         const std::atomic<bool>& stop) {
  CopyTally tally;
  try {
    store.begin_bulk_load();  // keeps the tables whose copy was committed
    size_t kept = store.tables().size();
    log.info("resuming the interrupted initial copy (slot " + st.slot + ", consistent at " +
             st.consistent_point.str() + "): " + std::to_string(kept) +
             (kept == 1 ? " table is" : " tables are") + " copied already; copying the others");
    copy_under_new_snapshots(store, st.publication, /*restart=*/false, o, log, stop, tally);
    st.phase = StoreState::Phase::kStreaming;
    st.applied_lsn = st.consistent_point;
    store.finish_bulk_load(st);
    log.info("copied " + std::to_string(tally.tables) + " more tables, " +
             std::to_string(tally.rows) + " rows; consistent at " + st.consistent_point.str());
  } catch (...) {
    store.abort_bulk_load();  // what was committed stays for the next run
    throw;
  }
}

// A stop, or a failure that may pass (a lost connection), keeps what the copy finished.
bool keeps_finished_tables(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const CopyInterrupted&) {
    return true;
  } catch (const Error& err) {
    return err.transient();
  } catch (...) {
  }
  return false;
}

// First run: create the slot with an exported snapshot, copy every published table under
// it, and end the copy phase durably. An interrupted one (phase kCopying) is resumed when
// its slot is still there; else started again. `kept` is set when this run fails after
// finishing some tables and keeps them (with the slot) for the next run.
void initial_sync(Store& store, pg::Connection& conn, const SyncOptions& o, const Logger& log,
                  const std::atomic<bool>& stop, bool& kept) {
  StoreState prior = store.state();
  std::string slot = !o.slot.empty() ? o.slot : !prior.slot.empty() ? prior.slot : generated_slot_name();

  if (prior.phase == StoreState::Phase::kCopying && slot == prior.slot &&
      pg::publication_exists(conn, prior.publication) && slot_can_resume(conn, prior)) {
    kept = true;  // whatever happens, the slot and the store stay
    return resume_initial_sync(store, prior, o, log, stop);
  }
  // An interrupted copy whose slot is gone (or unusable) starts again.
  if (prior.phase == StoreState::Phase::kCopying && !prior.slot.empty() &&
      pg::slot_exists(conn, prior.slot)) {
    log.info("discarding the interrupted copy and its slot " + prior.slot);
    pg::drop_slot(conn, prior.slot);  // waits for a killed run's walsender to go
  }

  bool active = false;
  if (pg::slot_exists(conn, slot, &active))
    throw Error(ErrorCategory::kSourceState,
                "replication slot " + slot + " already exists" + (active ? " and is in use" : "") +
                    "; choose another --slot, or drop it with SELECT pg_drop_replication_slot('" +
                    slot + "')");

  // The publication: the one named, or one created for --tables (or for all tables).
  std::string publication = o.publication;
  std::string create_publication_sql;  // empty: it exists
  bool created_publication = prior.created_publication;
  if (publication.empty()) publication = !prior.publication.empty() ? prior.publication : slot;
  if (pg::publication_exists(conn, publication)) {
    if (!o.tables.empty() && !(prior.created_publication && publication == prior.publication))
      throw Error(ErrorCategory::kConfiguration,
                  "publication " + publication + " exists; its tables are what is replicated, "
                  "so --tables cannot be combined with it");
  } else {
    const bool standby = pg::in_recovery(conn);
    if (!o.publication.empty() && (o.tables.empty() || standby))
      throw Error(ErrorCategory::kConfiguration,
                  "publication " + publication + " does not exist on the source" +
                      (standby ? ", a hot standby, where it cannot be created: create it on the primary"
                               : "; create it") +
                      " (CREATE PUBLICATION " + quote_ident(publication) + " FOR TABLE ...)" +
                      (standby ? ", then sync again once the standby has replayed it"
                               : " or pass --tables"));
    create_publication_sql = "CREATE PUBLICATION " + quote_ident(publication);
    if (o.tables.empty()) {
      create_publication_sql += " FOR ALL TABLES";
    } else {
      create_publication_sql += " FOR TABLE ";
      for (size_t i = 0; i < o.tables.size(); ++i) {
        QualifiedName n = parse_qualified_name(o.tables[i]);
        create_publication_sql += (i ? ", " : "") + quote_ident(n.schema) + "." + quote_ident(n.name);
      }
    }
    // A standby replays its primary's catalog and cannot write one of its own: the
    // publication is the primary's to create (the stream reads it from the WAL there).
    if (standby)
      throw Error(ErrorCategory::kConfiguration,
                  "the source is a hot standby, where no publication can be created: create it "
                  "on the primary (" + create_publication_sql + "), then sync again with "
                  "--publication " + publication + " once the standby has replayed it");
  }

  // From here on, a failure removes what this run created (unless it keeps finished tables).
  bool slot_created = false;
  bool publication_created = false;
  bool state_written = false;
  bool bulk_loading = false;
  CopyTally tally;
  try {
    pg::ReplicationConnection repl = pg::ReplicationConnection::open(o.source);
    pg::SystemIdentity id = repl.identify_system();

    // The names go into the store before the slot and the publication exist: a run killed
    // (kill -9, power loss) between their creation and the store's first commit would
    // otherwise leave them behind for good, and an orphaned slot retains WAL without
    // bound. The next run reads the names back, drops the slot, reuses the publication.
    StoreState st;
    st.phase = StoreState::Phase::kCopying;
    st.system_id = id.system_id;
    st.database = id.database;
    st.timeline = id.timeline;
    st.slot = slot;
    st.publication = publication;
    st.created_publication = created_publication || !create_publication_sql.empty();
    {
      StoreTxn txn(store);
      store.reset();
      store.write_state(st);
      txn.commit();
    }
    state_written = true;

    if (!create_publication_sql.empty()) {
      conn.exec(create_publication_sql, ("creating publication " + publication).c_str());
      publication_created = true;
      log.info("created publication " + publication);
    }
    warn_tables_without_identity(conn, publication, log);

    pg::CreatedSlot created = create_source_slot(repl, slot,
                                                 {.snapshot = pg::SnapshotAction::kExport, .failover = o.failover},
                                                 {.primary = o.primary, .stop = &stop}, log);
    slot_created = true;
    log.info("created slot " + slot + " at " + created.consistent_point.str());

    // Record where the slot stands durably before copying: an interrupted copy resumes
    // from there (resume_initial_sync).
    st.consistent_point = created.consistent_point;
    st.applied_lsn = created.consistent_point;
    {
      StoreTxn txn(store);
      store.write_state(st);
      txn.commit();
    }

    // The exported snapshot lives only while `repl` stays idle: every worker imports it
    // before anything else is done, then `repl` goes. DDL that a table's copy runs into
    // (it was dropped or rewritten after the snapshot) has the tables not copied yet
    // copied under a newer snapshot.
    store.begin_bulk_load();
    bulk_loading = true;
    bool copied = false;
    try {
      copied = copy_missing_tables(store, std::move(repl), created, publication,
                                   /*check_ddl=*/false, o, log, stop, tally);
    } catch (const Error& e) {
      if (!pg::changed_since_snapshot(e)) throw;
      log.info("a table changed on the source while it was being copied: copying it again");
    }
    if (!copied) copy_under_new_snapshots(store, publication, /*restart=*/true, o, log, stop, tally);

    st.phase = StoreState::Phase::kStreaming;
    store.finish_bulk_load(st);
    bulk_loading = false;
    log.info("copied " + std::to_string(tally.tables) + " tables, " + std::to_string(tally.rows) +
             " rows, consistent at " + created.consistent_point.str());
  } catch (...) {
    if (bulk_loading) store.abort_bulk_load();
    if (tally.tables > 0 && keeps_finished_tables(std::current_exception())) {
      kept = true;
      log.info("kept the " + std::to_string(tally.tables) + (tally.tables == 1 ? " table" : " tables") +
               " copied so far and slot " + slot + ": the next sync copies the others");
      throw;
    }
    // A first run that fails leaves no slot and no publication behind.
    try {
      if (slot_created) {
        pg::drop_slot(conn, slot);
      }
      if (publication_created)
        conn.exec("DROP PUBLICATION IF EXISTS " + quote_ident(publication));
      // A store that was empty is left empty (not tied to this source).
      if (state_written && prior.phase == StoreState::Phase::kEmpty) {
        StoreTxn txn(store);
        store.reset();
        txn.commit();
      }
    } catch (const Error& cleanup) {
      log.warn(std::string("could not clean up after the failed first run: ") + cleanup.what());
    }
    throw;
  }
}

// `pgseed resync`: the named tables wait for a new copy, which the stream session makes
// first thing (StreamApply reconciles with the catalog when it starts).
void mark_for_copy(Store& store, const std::vector<std::string>& names, const Logger& log) {
  std::vector<TableDef> tables = store.tables();
  StoreTxn txn(store);
  for (const auto& name : names) {
    QualifiedName n = parse_qualified_name(name);
    auto it = std::find_if(tables.begin(), tables.end(),
                           [&](const TableDef& t) { return t.schema == n.schema && t.name == n.name; });
    if (it == tables.end())
      throw Error(ErrorCategory::kConfiguration, "the store has no table " + name);
    TableDef t = *it;
    t.snapshot_lsn = TableDef::kAwaitingCopy;
    store.set_sync_state(t);
    log.info("table " + it->qualified() + " will be copied again");
  }
  txn.commit();
}

// `sync --reseed`: the slot anew, every table copied again. Each step is durable before
// the next, so that an interrupted reseed is taken up again by the next one:
// 1. every table waits for a new copy (no streamed change applies to it meanwhile);
// 2. the old slot (gone, invalidated, or still there) is dropped and made again under the
//    same name — a run killed between the two finds the new slot under the name the store
//    holds, and drops it again;
// 3. the store's position becomes the new slot's consistent point: nothing before it can
//    be streamed, and each table's copy, made later, holds everything before its own point.
void reseed(Store& store, pg::Connection& conn, const SyncOptions& o, const Logger& log,
            const std::atomic<bool>& stop) {
  StoreState st = store.state();
  {
    StoreTxn txn(store);
    for (TableDef t : store.tables()) {
      t.snapshot_lsn = TableDef::kAwaitingCopy;
      store.set_sync_state(t);
    }
    txn.commit();
  }
  if (pg::slot_exists(conn, st.slot)) pg::drop_slot(conn, st.slot);
  pg::ReplicationConnection repl = pg::ReplicationConnection::open(o.source);
  // The new slot's point is on the source's timeline now (also after a promotion that
  // left the store on a lost one: that is what a reseed repairs).
  st.timeline = repl.identify_system().timeline;
  Lsn point = create_source_slot(repl, st.slot, {.snapshot = pg::SnapshotAction::kNothing, .failover = o.failover},
                                 {.primary = o.primary, .stop = &stop}, log)
                  .consistent_point;
  st.consistent_point = point;
  st.applied_lsn = point;
  {
    StoreTxn txn(store);
    store.write_state(st);
    txn.commit();
  }
  log.info("reseeding: created slot " + st.slot + " at " + point.str() +
           "; every table is copied again (old rows readable until then)");
}

// --failover: the source can have failover slots (17+, a primary); checked before anything
// is created.
void check_failover_source(pg::Connection& conn) {
  if (conn.server_version() < 170000)
    throw Error(ErrorCategory::kSourceState,
                "--failover: failover slots need PostgreSQL 17 or later; the source runs " +
                    std::to_string(conn.server_version() / 10000));
  if (pg::in_recovery(conn))
    throw Error(ErrorCategory::kConfiguration,
                "--failover: the source is a hot standby; a failover slot is made on the primary "
                "(its standbys with sync_replication_slots = on keep a copy of it)");
}

// --failover on a store whose slot exists: the slot becomes a failover slot (once; the
// stream has not started, so the slot is free to be altered).
void ensure_failover_slot(pg::Connection& conn, const SyncOptions& o, const std::string& slot,
                          const Logger& log) {
  auto s = pg::slot_status(conn, slot, Lsn());
  if (!s || s->failover) return;
  pg::ReplicationConnection repl = pg::ReplicationConnection::open(o.source);
  repl.alter_slot_failover(slot, true);
  log.info("slot " + slot + " is a failover slot now");
}

// A store file this run created goes again when the first run does not complete.
void remove_new_store(std::unique_ptr<Store>& store, bool store_existed, const std::string& uri) {
  if (store_existed) return;
  store.reset();
  Store::remove(uri);
}

}  // namespace

const char* to_string(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kInsert: return "insert";
    case ChangeKind::kUpdate: return "update";
    case ChangeKind::kDelete: return "delete";
    case ChangeKind::kTruncate: return "truncate";
  }
  return "unknown";
}

// What a Sync holds; run() is Impl::run() on the caller's thread.
struct Sync::Impl {
  explicit Impl(SyncOptions o) : options(std::move(o)) {}
  bool run();

  const SyncOptions options;
  std::atomic<bool> stop{false};  // set by Sync::stop(), from any thread
};

Sync::Sync(SyncOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Sync::~Sync() = default;

void Sync::stop() { impl_->stop = true; }

namespace {
// The fan-out options that go together, checked before anything is opened.
void check_fanout_options(const SyncOptions& o) {
  if (!o.from.empty()) {
    if (!o.source.empty() || !o.publish.empty() || !o.publication.empty() || !o.tables.empty() ||
        o.all_tables || !o.slot.empty() || o.reseed || !o.resync_tables.empty() || o.failover)
      throw Error(ErrorCategory::kConfiguration,
                  "--from (an edge of a NATS stream) cannot be combined with --source, --publish, "
                  "--publication, --tables, --all-tables, --slot, --reseed, --failover or resync: "
                  "the hub has the source");
    return;
  }
  if (o.publish.empty() != o.stream.empty())
    throw Error(ErrorCategory::kConfiguration, "--publish and --stream go together (the NATS servers and the stream name)");
}

// An edge: the store follows a hub's NATS stream (sync/edge_sync.h). A first run that
// fails before the snapshot is restored leaves no store where there was none.
bool run_edge(const SyncOptions& o, const Logger& log, const std::atomic<bool>& stop) {
  std::error_code ec;
  bool existed = std::filesystem::exists(StoreUri::parse(o.store).path, ec);
  std::unique_ptr<Store> store = Store::open(o.store);
  store->claim_writer(o.log);
  try {
    EdgeSync edge(o, *store, log, stop);
    edge.run();
  } catch (...) {
    if (!existed && store->state().phase != StoreState::Phase::kStreaming) {
      store.reset();
      Store::remove(o.store);
    }
    throw;
  }
  return true;
}
}  // namespace

bool Sync::run() { return impl_->run(); }

bool Sync::Impl::run() {
  Logger log(options.log);
  check_fanout_options(options);
  if (!options.from.empty()) return run_edge(options, log, stop);
  if (options.all_tables && (!options.tables.empty() || !options.publication.empty()))
    throw Error(ErrorCategory::kConfiguration,
                "--all-tables cannot be combined with --tables or --publication");
  // A first run that fails leaves things as they were: no slot, no publication, and no
  // store file where there was none.
  StoreUri uri = StoreUri::parse(options.store);
  std::error_code ec;
  bool store_existed = std::filesystem::exists(uri.path, ec);
  std::unique_ptr<Store> store = Store::open(options.store);
  // Claim the store first (its one-writer lock): a second sync on the same store must not
  // get as far as dropping the slot of a copy that is still running.
  store->claim_writer(options.log);
  bool copy_kept = false;  // an interrupted initial copy keeps what it finished
  try {
    StoreState st = store->state();
    // An edge of a NATS stream has no slot of its own (the hub holds the only one).
    if (st.phase == StoreState::Phase::kStreaming && st.slot.empty())
      throw Error(ErrorCategory::kConfiguration,
                  "store " + options.store + " is an edge of a NATS stream (it has no slot): "
                  "sync it with --from nats://.../STREAM, not --source");
    // Safe default: no publication for every table unless asked for by name (before
    // anything is created or even connected to).
    if (st.publication.empty() && options.publication.empty() && options.tables.empty() &&
        !options.all_tables)
      throw Error(ErrorCategory::kConfiguration,
                  "a first sync needs --tables a,b or --publication NAME (or --all-tables for a "
                  "publication of every table, on which PostgreSQL refuses UPDATE and DELETE "
                  "for tables without a replica identity)");
    pg::Connection conn = pg::Connection::open(options.source);
    pg::check_source(conn);
    if (options.failover) check_failover_source(conn);
    if (st.phase != StoreState::Phase::kEmpty) {
      pg::ReplicationConnection repl = pg::ReplicationConnection::open(options.source);
      check_identity(st, repl.identify_system(), options, options.store);
      reconcile_tables(conn, st, options, options.store, log);
    }
    warn_inactive_slots(conn, !options.slot.empty() ? options.slot : st.slot, log);
    warn_hosts_without_write_target(conn, options, log);
    if (st.phase != StoreState::Phase::kStreaming) {
      if (options.reseed || !options.resync_tables.empty())
        throw Error(ErrorCategory::kConfiguration,
                    "store " + options.store + " has no finished copy to " +
                        (options.reseed ? "reseed" : "resync tables of") + "; run pgseed sync");
      initial_sync(*store, conn, options, log, stop, copy_kept);
    } else {
      if (!options.resync_tables.empty()) mark_for_copy(*store, options.resync_tables, log);
      if (options.reseed) reseed(*store, conn, options, log, stop);
    }
    if (options.failover) ensure_failover_slot(conn, options, store->state().slot, log);
  } catch (const CopyInterrupted&) {
    // stop() during the initial copy: the tables it finished are kept with the slot (the
    // next run copies the others); with none finished, nothing is kept (the slot and a
    // created publication are already dropped) and the next run starts the copy again.
    if (copy_kept) {
      log.warn("stopped during the initial copy; the next sync copies the tables it did not finish");
      return false;
    }
    remove_new_store(store, store_existed, options.store);
    log.warn("stopped during the initial copy; nothing was kept, the next sync starts it again");
    return false;
  } catch (const Error&) {
    if (!copy_kept) remove_new_store(store, store_existed, options.store);
    throw;
  }

  std::optional<HubPublisher> publisher;
  if (!options.publish.empty()) publisher.emplace(options.publish, options.stream, options.snapshot_every_seconds, log);
  StreamApply stream(options, *store, log, stop, Lsn(), publisher ? &*publisher : nullptr);
  stream.run();
  return true;
}

}  // namespace pgseed
