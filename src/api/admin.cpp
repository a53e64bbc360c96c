// status, verify and drop: what an operator runs beside a replica.
#include "pgseed/admin.h"

#include <unistd.h>

#include <algorithm>
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
#include "pg/identifiers.h"
#include "pgseed/error.h"
#include "pgseed/sync.h"
#include "store/store.h"
#include "api/replica_state.h"
#include "sync/logger.h"
#include "sync/stream_apply.h"

namespace pgseed {

namespace {

// Seconds since a "YYYY-MM-DD HH:MM:SS[.ffffff]+00" UTC timestamp; -1 if unparsable.
double seconds_since(const std::string& ts) {
  std::tm tm{};
  if (ts.size() < 19 || !strptime(ts.c_str(), "%Y-%m-%d %H:%M:%S", &tm)) return -1;
  double frac = 0;
  if (ts.size() > 20 && ts[19] == '.') frac = std::atof(("0" + ts.substr(19, ts.find('+', 19) - 19)).c_str());
  double t = double(timegm(&tm)) + frac;
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration<double>(now).count() - t;
}

}  // namespace

StatusReport status(const std::string& store_uri, const std::string& source,
                    int64_t max_retained_bytes) {
  auto store = Store::open(store_uri, /*must_exist=*/true);
  StatusReport rep;
  StoreState st = store->state();
  rep.state = to_replica_state(st);
  for (const auto& t : store->tables()) rep.tables.push_back({t.qualified(), store->count(t)});
  rep.healthy = st.phase == StoreState::Phase::kStreaming;
  if (st.phase == StoreState::Phase::kCopying)
    rep.warnings.push_back("the initial copy did not finish; run pgseed sync to restart it");
  if (st.phase == StoreState::Phase::kEmpty) rep.warnings.push_back("the store is empty");
  if (!st.last_commit_time.empty()) rep.lag_seconds = seconds_since(st.last_commit_time);
  if (source.empty()) return rep;

  rep.source_checked = true;
  pg::Connection conn = pg::Connection::open(source);
  if (auto slot = pg::slot_status(conn, st.slot, st.applied_lsn)) {
    rep.slot_exists = true;
    rep.slot_active = slot->active;
    rep.confirmed_flush_lsn = slot->confirmed_flush_lsn;
    rep.restart_lsn = slot->restart_lsn;
    rep.wal_status = slot->wal_status;
    rep.lag_bytes = slot->lag_bytes;
    rep.retained_bytes = slot->retained_bytes;
    if (rep.wal_status == "lost") {
      rep.healthy = false;
      rep.warnings.push_back("slot " + st.slot + " was invalidated (max_slot_wal_keep_size): the "
                             "replica cannot catch up; drop it and re-sync into a new store");
    }
    if (rep.retained_bytes > max_retained_bytes) {
      rep.healthy = false;
      rep.warnings.push_back("slot " + st.slot + " retains " +
                             std::to_string(rep.retained_bytes / (1024 * 1024)) +
                             " MB of WAL on the source; run pgseed sync, or pgseed drop if the "
                             "replica is no longer needed");
    }
  } else {
    rep.healthy = false;
    rep.warnings.push_back("slot " + st.slot + " does not exist on the source: the replica "
                           "cannot catch up; re-sync into a new store");
  }
  if (!st.publication.empty() && !pg::publication_exists(conn, st.publication)) {
    rep.healthy = false;
    rep.warnings.push_back("publication " + st.publication + " no longer exists on the source");
  } else if (!st.publication.empty()) {
    // The publication's tables against the store's: a table added or removed since.
    auto tables = store->tables();
    for (const auto& t : pg::published_tables(conn, st.publication)) {
      bool known = false;
      for (const auto& s : tables) known = known || s.source_oid == t.def.source_oid;
      if (!known)
        rep.warnings.push_back("table " + t.def.qualified() +
                               " was added to the publication; the next sync copies it");
    }
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
  pg::PublishedTable pt{t, "", -1, -1};
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

VerifyReport verify(const std::string& source, const std::string& store_uri, const LogSink& sink) {
  Logger log(sink);
  auto store = Store::open(store_uri, /*must_exist=*/true);
  StoreState st = store->state();
  if (st.phase != StoreState::Phase::kStreaming)
    throw Error(ErrorCategory::kStore, "store " + store_uri + " has not finished its initial copy");

  // A snapshot of the source at a known WAL position P...
  pg::Connection snap_conn = pg::Connection::open(source);
  Lsn point;
  {
    pg::ReplicationConnection repl = pg::ReplicationConnection::open(source);
    std::string name = "pgseed_verify_" + std::to_string(getpid());
    pg::CreatedSlot slot = repl.create_slot(name, {.temporary = true});
    point = slot.consistent_point;
    snap_conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    snap_conn.exec("SET TRANSACTION SNAPSHOT " + snap_conn.quote_literal(slot.snapshot_name),
                   "importing the snapshot");
  }  // the temporary slot goes with its connection; the imported snapshot stays

  // ...and the store caught up to exactly P through its own slot.
  if (st.applied_lsn < point) {
    SyncOptions o;
    o.source = source;
    o.store = store_uri;
    o.log = sink;
    std::atomic<bool> stop{false};
    try {
      StreamApply(o, *store, log, stop, point).run();
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::kStore)
        throw Error(ErrorCategory::kStore, std::string(e.what()) +
                                               "; verify needs the store to itself: stop the running sync first");
      throw;
    }
  }

  VerifyReport rep;
  rep.at = point;
  for (const auto& t : store->tables()) rep.tables.push_back(compare_table(*store, snap_conn, st.publication, t));
  snap_conn.exec("COMMIT");
  return rep;
}

void drop(const std::string& source, const std::string& store_uri, bool delete_store,
          const LogSink& sink) {
  Logger log(sink);
  StoreState st;
  {
    auto store = Store::open(store_uri, /*must_exist=*/true);
    st = store->state();
  }
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
  if (st.created_publication && pg::publication_exists(conn, st.publication)) {
    conn.exec("DROP PUBLICATION " + quote_ident(st.publication), "dropping the publication");
    log.info("dropped publication " + st.publication);
  }
  if (delete_store) {
    Store::remove(store_uri);
    log.info("deleted store " + store_uri);
  }
}

}  // namespace pgseed
