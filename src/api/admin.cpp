// status, verify and drop: what an operator runs beside a replica.
#include "pgseed/admin.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <cstring>
#include <functional>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <unordered_map>

#include "decode/copy_text.h"
#include "pg/catalog.h"
#include "pg/connection.h"
#include "pg/copy_reader.h"
#include "pg/replication_connection.h"
#include "model/identifiers.h"
#include "pgseed/error.h"
#include "pgseed/sync.h"
#include "store/store.h"
#include "api/replica_state.h"
#include "sync/edge_sync.h"
#include "sync/logger.h"
#include "sync/slot_creation.h"
#include "sync/source_identity.h"
#include "sync/stream_apply.h"
#include "sync/stream_spool.h"

namespace pgseed {

namespace {

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// "YYYY-MM-DD HH:MM:SS[.ffffff]+00" (PostgreSQL's ISO output in UTC) as RFC 3339
// ("YYYY-MM-DDTHH:MM:SS[.ffffff]Z") and as seconds since the epoch; false if unparsable.
bool parse_pg_utc(const std::string& ts, std::string& rfc3339, double& unix_seconds) {
  std::tm tm{};
  if (ts.size() < 19 || ts[10] != ' ' || !strptime(ts.c_str(), "%Y-%m-%d %H:%M:%S", &tm)) return false;
  size_t end = 19;
  double frac = 0;
  if (end < ts.size() && ts[end] == '.') {
    size_t d = end + 1;
    while (d < ts.size() && std::isdigit(static_cast<unsigned char>(ts[d]))) ++d;
    frac = std::atof(("0" + ts.substr(end, d - end)).c_str());
    end = d;
  }
  std::string zone = ts.substr(end);
  if (zone != "+00" && zone != "+00:00" && zone != "Z" && !zone.empty()) return false;
  rfc3339 = ts.substr(0, 10) + "T" + ts.substr(11, end - 11) + "Z";
  unix_seconds = double(timegm(&tm)) + frac;
  return true;
}

void warn(StatusReport& rep, const char* code, std::string message, bool unhealthy) {
  rep.warnings.push_back({code, std::move(message)});
  if (unhealthy) rep.healthy = false;
}

// The source's side of the report: the server's WAL position, the slot, the publication.
void read_source(StatusReport& rep, const StoreReader& store, const StoreState& st, const std::string& source,
                 int64_t max_retained_bytes) {
  // A source other than the store's would report its own slot of that name as ours.
  require_same_source(st, source, "");
  pg::Connection conn = pg::Connection::open(source);
  rep.server_lsn = Lsn::parse(conn.query_value("SELECT " + pg::current_wal_lsn_sql() + "::text"));
  rep.lag_bytes = std::stoll(conn.query_value(
      "SELECT greatest(pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn), 0)::bigint",
      {rep.server_lsn.str(), st.applied_lsn.str()}));
  // replay_lag: the walsender's own measure (from pgseed's flush reports) while a sync
  // streams from the slot; NULL once it has caught up and the source is idle.
  bool streaming_now = false;
  double walsender_lag = 0;
  if (auto slot = st.slot.empty() ? std::nullopt : pg::slot_status(conn, st.slot, st.applied_lsn)) {
    rep.slot_exists = true;
    rep.slot_active = slot->active;
    if (!slot->confirmed_flush_lsn.empty()) rep.confirmed_flush_lsn = Lsn::parse(slot->confirmed_flush_lsn);
    if (!slot->restart_lsn.empty()) rep.restart_lsn = Lsn::parse(slot->restart_lsn);
    rep.wal_status = slot->wal_status;
    rep.retained_bytes = slot->retained_bytes;
    rep.slot_invalid = rep.wal_status == "lost";
    // The walsender's row is visible to its own role and to pg_read_all_stats; else its
    // replay_lag reads NULL although it may lag: then the approximation below.
    streaming_now = slot->streaming;
    walsender_lag = slot->replay_lag_seconds;
    rep.slot_failover = slot->failover;
    rep.source_is_standby = pg::in_recovery(conn);
    rep.slot_synced = slot->synced;
    rep.slot_sync_ready = slot->synced && !slot->temporary;
    if (rep.slot_failover && !rep.source_is_standby) {
      rep.synchronized_standby_slots = conn.query_value("SHOW synchronized_standby_slots");
      if (rep.synchronized_standby_slots.empty())
        warn(rep, "failover_unguarded", "slot " + st.slot + " is a failover slot, but "
             "synchronized_standby_slots is empty on the source: pgseed may receive changes a "
             "standby has not, and after a promotion of that standby the store would hold "
             "transactions the new primary never had; name the standbys' physical slots there", false);
    }
    if (rep.slot_synced && !rep.slot_sync_ready)
      warn(rep, "slot_sync_not_ready", "the standby's copy of slot " + st.slot + " is not ready "
           "for a promotion yet (temporary until the primary's slot has moved past a running-xacts "
           "record the standby has)", false);
    if (rep.slot_invalid)
      warn(rep, "slot_invalidated", "slot " + st.slot + " was invalidated (max_slot_wal_keep_size): the "
           "replica cannot catch up; drop it and re-sync into a new store", true);
    else if (rep.wal_status == "unreserved")
      warn(rep, "slot_unreserved", "slot " + st.slot + " retains more WAL than max_wal_size and "
           "will be invalidated at the next checkpoint unless the replica catches up", false);
    if (!rep.slot_active && !rep.slot_invalid && st.phase == StoreState::Phase::kStreaming)
      warn(rep, "slot_inactive", "slot " + st.slot + " is not in use (no pgseed sync is streaming "
           "from it); it retains WAL until the next sync", false);
    if (rep.retained_bytes > max_retained_bytes)
      warn(rep, "retained_wal", "slot " + st.slot + " retains " +
           std::to_string(rep.retained_bytes / (1024 * 1024)) + " MB of WAL on the source; run "
           "pgseed sync, or pgseed drop if the replica is no longer needed", true);
  } else if (!st.slot.empty()) {
    warn(rep, "slot_missing", "slot " + st.slot + " does not exist on the source: the replica "
         "cannot catch up; re-sync into a new store", true);
  }

  if (rep.lag_bytes == 0) rep.lag_seconds = 0;
  else if (streaming_now) rep.lag_seconds = walsender_lag;
  else if (rep.last_commit_unix >= 0) rep.lag_seconds = std::max(0.0, rep.time_unix - rep.last_commit_unix);

  if (!st.publication.empty() && !pg::publication_exists(conn, st.publication)) {
    warn(rep, "publication_missing", "publication " + st.publication + " no longer exists on the source", true);
  } else if (!st.publication.empty()) {
    // The publication's tables against the store's: a table added since.
    auto tables = store.tables();
    for (const auto& t : pg::published_tables(conn, st.publication)) {
      bool known = false;
      for (const auto& s : tables) known = known || s.source_oid == t.def.source_oid;
      if (!known)
        warn(rep, "table_added", "table " + t.def.qualified() +
             " was added to the publication; the next sync copies it", false);
    }
  }
  rep.source_checked = true;
}

}  // namespace

StatusReport status(const StatusOptions& options) {
  const std::string& store_uri = options.store;
  const std::string& source = options.source;
  const int64_t max_retained_bytes = options.max_retained_bytes;
  // A reader, not the writer: a running sync keeps writing. One view: the counts are the
  // rows at the applied LSN reported.
  auto store = StoreReader::open(store_uri);
  store->refresh();
  StatusReport rep;
  rep.time_unix = now_unix();
  StoreState st = store->state();
  rep.state = to_replica_state(st);
  for (const auto& t : store->tables()) rep.tables.push_back({t.qualified(), store->count(t)});
  rep.healthy = st.phase == StoreState::Phase::kStreaming;
  if (st.phase == StoreState::Phase::kCopying)
    warn(rep, "copy_unfinished", "the initial copy did not finish; run pgseed sync to restart it", true);
  if (st.phase == StoreState::Phase::kEmpty) warn(rep, "store_empty", "the store is empty", true);
  if (!st.last_commit_time.empty() &&
      !parse_pg_utc(st.last_commit_time, rep.last_commit_time, rep.last_commit_unix)) {
    rep.last_commit_time.clear();
    rep.last_commit_unix = -1;
  }
  if (source.empty()) return rep;
  try {
    read_source(rep, *store, st, source, max_retained_bytes);
  } catch (const Error& e) {
    rep.source_checked = false;
    rep.source_error = e.what();
    rep.healthy = false;
  }
  return rep;
}

namespace {

uint64_t hash_bytes(uint64_t h, std::string_view s) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Hash of a whole row (values and NULLs), and of its key columns (all columns without a key).
uint64_t row_hash(const Row& row) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& d : row) {
    char tag[9] = {char(d.is_null() ? 0 : 1)};
    uint64_t n = d.text.size();
    std::memcpy(tag + 1, &n, 8);
    h = hash_bytes(hash_bytes(h, std::string_view(tag, 9)), d.text);
  }
  return h;
}

uint64_t key_hash(const TableDef& t, const Row& row) {
  if (!t.has_key()) return row_hash(row);
  Row key;
  for (size_t i = 0; i < row.size(); ++i)
    if (t.columns[i].key_position > 0) key.push_back(row[i]);
  return row_hash(key);
}

std::string key_text(const TableDef& t, const Row& row) {
  std::string k;
  for (size_t i = 0; i < row.size(); ++i)
    if (!t.has_key() || t.columns[i].key_position > 0)
      k += (k.empty() ? "" : ",") + (row[i].is_null() ? std::string("NULL") : std::string(row[i].text));
  return "(" + k + ")";
}

// Reads the table from the source under the connection's snapshot, row by row.
void scan_source(pg::Connection& conn, const pg::PublishedTable& pt,
                 const std::function<void(const Row&)>& fn) {
  const TableDef& t = pt.def;
  pg::CopyReader reader(conn);
  reader.start(pg::copy_query(pt), "reading " + t.qualified());
  RowBatch batch;
  Row row;
  reader.for_each_line([&](std::string_view line) {
    batch.clear();
    parse_copy_text_line(line, t.columns.size(), batch);
    batch.row(0, row);
    fn(row);
  });
}

// Compares one table: (key hash, row hash) pairs of both sides, sorted and merged. Memory
// stays bounded: a large table is compared in several passes, each over one slice of the
// key-hash space (both sides re-read; the source under the same snapshot).
TableComparison compare_table(Store& store, pg::Connection& conn, const std::string& publication,
                              const TableDef& t) {
  constexpr uint64_t kRowsPerPass = 1'000'000;  // 2 x 16 bytes a row: ~32 MB a pass
  TableComparison cmp;
  cmp.table = t.qualified();
  pg::PublishedTable pt;
  pt.def = t;
  auto src = pg::published_tables_by_oid(conn, publication, t.source_oid);
  if (!src.empty()) pt = src[0], pt.def = t;
  uint64_t rows = store.count(t);
  uint64_t passes = std::max<uint64_t>(1, (rows + kRowsPerPass - 1) / kRowsPerPass);
  std::vector<uint64_t> example_keys;  // key hashes to show, with what was wrong
  std::vector<std::string> example_kinds;
  for (uint64_t pass = 0; pass < passes; ++pass) {
    auto mine = [&](uint64_t kh) { return kh % passes == pass; };
    std::vector<std::pair<uint64_t, uint64_t>> a, b;  // store, source
    a.reserve(rows / passes + rows / passes / 8 + 16);
    b.reserve(a.capacity());
    store.scan(t, [&](const Row& row) {
      uint64_t kh = key_hash(t, row);
      if (pass == 0) ++cmp.store_rows;
      if (mine(kh)) a.push_back({kh, row_hash(row)});
    });
    scan_source(conn, pt, [&](const Row& row) {
      uint64_t kh = key_hash(t, row);
      if (pass == 0) ++cmp.source_rows;
      if (mine(kh)) b.push_back({kh, row_hash(row)});
    });
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    auto note = [&](uint64_t kh, const char* kind) {
      if (example_keys.size() < 5) example_keys.push_back(kh), example_kinds.push_back(kind);
    };
    // Without a key, the key hash is the row hash: equal rows pair off as a multiset.
    size_t i = 0, j = 0;
    while (i < a.size() || j < b.size()) {
      if (j == b.size() || (i < a.size() && a[i].first < b[j].first)) {
        ++cmp.extra;
        note(a[i++].first, "extra");
      } else if (i == a.size() || b[j].first < a[i].first) {
        ++cmp.missing;
        note(b[j++].first, "missing");
      } else {
        if (a[i].second != b[j].second) {
          ++cmp.different;
          note(a[i].first, "different");
        }
        ++i, ++j;
      }
    }
  }
  // Show the example keys as text: one more read of whichever side holds them.
  if (!example_keys.empty()) {
    std::vector<std::string> shown(example_keys.size());
    auto fill = [&](const Row& row) {
      uint64_t kh = key_hash(t, row);
      for (size_t k = 0; k < example_keys.size(); ++k)
        if (example_keys[k] == kh && shown[k].empty()) shown[k] = key_text(t, row);
    };
    store.scan(t, fill);
    if (std::find(shown.begin(), shown.end(), std::string()) != shown.end()) scan_source(conn, pt, fill);
    for (size_t k = 0; k < example_keys.size(); ++k)
      cmp.examples.push_back(std::string(example_kinds[k]) + " " + shown[k]);
  }
  return cmp;
}

}  // namespace

namespace {

// A snapshot of the source at a known WAL position P, imported by `snap_conn` (in a
// read-only repeatable-read transaction that stays open); returns P. The temporary slot
// that exported it is gone when this returns; the imported snapshot stays.
Lsn take_source_snapshot(pg::Connection& snap_conn, const std::string& source, const std::string& primary,
                         const Logger& log) {
  pg::ReplicationConnection repl = pg::ReplicationConnection::open(source);
  std::string name = "pgseed_verify_" + std::to_string(getpid());
  pg::CreatedSlot slot = create_source_slot(repl, name, {.temporary = true}, {.primary = primary}, log);
  snap_conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
  snap_conn.exec("SET TRANSACTION SNAPSHOT " + snap_conn.quote_literal(slot.snapshot_name), "importing the snapshot");
  return slot.consistent_point;
}

Error needs_store_to_itself(const Error& e) {
  return Error(ErrorCategory::kStore, std::string(e.what()) + "; verify needs the store to itself: stop the running sync first");
}

}  // namespace

VerifyReport verify(const VerifyOptions& options, const LogSink& sink) {
  const std::string& source = options.source;
  const std::string& store_uri = options.store;
  const std::string& primary = options.primary;
  Logger log(sink);
  auto store = Store::open(store_uri, /*must_exist=*/true);
  StoreState st = store->state();
  // Before anything else: a store made from another source is never written into (the
  // catch-up below would take that source's tables for tables added to the publication).
  require_same_source(st, source, store_uri);
  if (st.phase != StoreState::Phase::kStreaming)
    throw Error(ErrorCategory::kStore, "store " + store_uri + " has not finished its initial copy");
  // An edge of a NATS stream has no slot: it is caught up through the stream it follows (the
  // hub's slot is not its to move), which the store does not record.
  const bool edge = st.slot.empty();
  if (edge && options.from.empty())
    throw Error(ErrorCategory::kConfiguration,
                "store " + store_uri + " is an edge of a NATS stream (it has no slot): name the stream it "
                "follows with --from nats://HOST:PORT,.../STREAM, through which verify catches it up");
  if (!edge && !options.from.empty())
    throw Error(ErrorCategory::kConfiguration, "--from is for an edge of a NATS stream; store " + store_uri +
                                                   " follows its own slot " + st.slot);
  if (edge) {
    try {
      store->claim_writer(sink);
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::kStore) throw needs_store_to_itself(e);
      throw;
    }
  }

  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    // A snapshot of the source at a known WAL position P...
    pg::Connection snap_conn = pg::Connection::open(source);
    Lsn point = take_source_snapshot(snap_conn, source, primary, log);

    // ...and the store caught up to exactly P: through its own slot, or an edge through
    // the stream it follows.
    if (store->state().applied_lsn < point) {
      SyncOptions o;
      o.store = store_uri;
      o.log = sink;
      std::atomic<bool> stop{false};
      if (!edge) {
        o.source = source;
        o.primary = primary;
        try {
          StreamApply(o, *store, log, stop, point).run();
        } catch (const Error& e) {
          if (e.category() == ErrorCategory::kStore) throw needs_store_to_itself(e);
          throw;
        }
      } else {
        o.from = options.from;
        EdgeSync sync(o, *store, log, stop, point, std::chrono::seconds(std::max(1, options.hub_wait_seconds)));
        sync.run();
        if (!sync.lined_up()) {
          // A snapshot restored on the way is newer than P: compared at P, its tables would
          // differ for no fault of the edge's. A new P is past it.
          std::string why = "the edge restored a snapshot of the hub's newer than the snapshot of the source at " +
                            point.str() + " (the hub copied tables again)";
          if (attempt == kAttempts)
            throw Error(ErrorCategory::kSourceState, why + ", " + std::to_string(kAttempts) +
                                                         " times in a row; run verify again once the hub's table syncs are over");
          log.info(why + ": taking a new snapshot of the source");
          continue;  // snap_conn's transaction ends with it
        }
      }
    }

    VerifyReport rep;
    rep.at = point;
    for (const auto& t : store->tables()) rep.tables.push_back(compare_table(*store, snap_conn, st.publication, t));
    snap_conn.exec("COMMIT");
    return rep;
  }
}

void drop(const DropOptions& options, const LogSink& sink) {
  const std::string& source = options.source;
  const std::string& store_uri = options.store;
  const bool delete_store = options.delete_store;
  Logger log(sink);
  StoreState st;
  {
    auto store = StoreReader::open(store_uri);  // a reader: a running sync is reported below
    st = store->state();
  }
  require_same_source(st, source, store_uri);  // never drop another source's slot of that name
  pg::Connection conn = pg::Connection::open(source);
  if (!st.slot.empty()) {
    bool active = false;
    if (pg::slot_exists(conn, st.slot, &active)) {
      if (active)
        throw Error(ErrorCategory::kSourceState,
                    "slot " + st.slot + " is in use (is a pgseed sync running?); stop it first");
      pg::drop_slot(conn, st.slot, 0);
      log.info("dropped slot " + st.slot);
    } else {
      log.warn("slot " + st.slot + " does not exist on the source");
    }
  }
  if (st.created_publication && pg::publication_exists(conn, st.publication) && pg::in_recovery(conn)) {
    log.warn("publication " + st.publication + " cannot be dropped on a hot standby: drop it on "
             "the primary (DROP PUBLICATION " + quote_ident(st.publication) + ")");
  } else if (st.created_publication && pg::publication_exists(conn, st.publication)) {
    conn.exec("DROP PUBLICATION " + quote_ident(st.publication), "dropping the publication");
    log.info("dropped publication " + st.publication);
  }
  if (delete_store) {
    Store::remove(store_uri);
    std::error_code ec;  // a killed sync's spool of streamed transactions, if any
    std::filesystem::remove_all(StreamSpool::dir_for(store_uri), ec);
    log.info("deleted store " + store_uri);
  }
}

void drop_slot(const std::string& source, const std::string& slot, const LogSink& sink) {
  Logger log(sink);
  pg::Connection conn = pg::Connection::open(source);
  auto info = pg::slot_status(conn, slot, Lsn());
  if (!info)
    throw Error(ErrorCategory::kConfiguration, "there is no replication slot " + slot + " on the source");
  const std::string& type = info->slot_type;
  const std::string& plugin = info->plugin;
  if (type != "logical" || plugin != "pgoutput")
    throw Error(ErrorCategory::kSourceState,
                "slot " + slot + " is a " + (type == "logical" ? plugin + " logical" : type) +
                    " slot, not one pgseed makes; drop it with SQL if it is really unused");
  if (info->active)
    throw Error(ErrorCategory::kSourceState,
                "slot " + slot + " is in use (is a pgseed sync running?); stop it first");
  // A slot of another database can be dropped from any database of the cluster.
  pg::drop_slot(conn, slot, 0);
  log.info("dropped slot " + slot);
}

}  // namespace pgseed
