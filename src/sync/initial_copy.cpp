#include "sync/initial_copy.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <thread>

#include "decode/copy_binary.h"
#include "decode/copy_text.h"
#include "pg/copy_reader.h"
#include "store/store_txn.h"
#include "sync/bounded_queue.h"
#include "sync/failpoint.h"

namespace pgseed {

namespace {
constexpr size_t kBatchBytes = 2 << 20;        // a worker hands over ~2 MB of rows at a time
constexpr size_t kQueueBatches = 4;            // at most this many batches wait for the writer
constexpr size_t kCommitBytes = 256u << 20;    // the writer commits every ~256 MB
constexpr size_t kFinishedCommitBytes = 32u << 20;  // and after a table's end past ~32 MB

constexpr int kMaxPartsPerWorker = 4;          // a split table has at most 4 x workers parts

struct Batch {
  size_t table;  // index into the tables vector
  RowBatch rows;
  std::unique_ptr<Store::EncodedRows> encoded;  // the rows in the store's encoding, if it has one
  bool end_of_unit = false;  // no rows: the worker has sent every row of one unit
};

std::string describe(const pg::PublishedTable& t, const CopyUnit& u) {
  if (!u.range) return t.def.qualified();
  return t.def.qualified() + " (part " + std::to_string(u.part + 1) + " of " +
         std::to_string(u.parts) + ")";
}
}  // namespace

std::vector<CopyUnit> plan_copy_units(const std::vector<pg::PublishedTable>& tables,
                                      uint64_t split_bytes, int workers,
                                      const std::vector<bool>& no_split) {
  std::vector<CopyUnit> units;
  for (size_t i = 0; i < tables.size(); ++i) {
    const auto& t = tables[i];
    bool split = split_bytes > 0 && workers > 1 && t.relkind == 'r' && !t.partitioned &&
                 (i >= no_split.size() || !no_split[i]) && t.heap_bytes > 0 &&
                 uint64_t(t.heap_bytes) > split_bytes && t.heap_blocks >= 2;
    if (!split) {
      units.push_back(CopyUnit{i, std::nullopt, 0, 1, t.estimated_bytes});
      continue;
    }
    uint64_t bytes = uint64_t(t.heap_bytes);
    uint64_t blocks = std::min<uint64_t>(uint64_t(t.heap_blocks), 0xFFFFFFFEu);  // MaxBlockNumber + 1
    uint64_t parts = bytes / split_bytes + (bytes % split_bytes != 0);
    parts = std::clamp<uint64_t>(parts, 2, uint64_t(kMaxPartsPerWorker) * uint64_t(workers));
    parts = std::min(parts, blocks);
    for (uint64_t p = 0; p < parts; ++p) {
      uint64_t first = blocks * p / parts;
      uint64_t end = blocks * (p + 1) / parts;
      CopyUnit u;
      u.table = i;
      // The last range is open-ended: it also reads blocks the table grew by after
      // pg_relation_size was read (their rows are invisible to the snapshot, but any
      // that were not would be read too, never lost).
      u.range = pg::BlockRange{uint32_t(first), p + 1 == parts ? 0u : uint32_t(end)};
      u.part = int(p);
      u.parts = int(parts);
      u.estimated_bytes = int64_t(bytes * (end - first) / blocks);
      units.push_back(u);
    }
  }
  std::stable_sort(units.begin(), units.end(), [](const CopyUnit& a, const CopyUnit& b) {
    return a.estimated_bytes > b.estimated_bytes;
  });
  return units;
}

void InitialCopy::import_snapshot(const std::string& snapshot) {
  snapshot_ = snapshot;
  if (conns_.empty()) add_worker();
}

void InitialCopy::connect_workers(const std::vector<pg::PublishedTable>& tables) {
  int jobs = jobs_ > 0 ? jobs_ : int(std::max(1u, std::thread::hardware_concurrency()));
  size_t units = plan_copy_units(tables, split_bytes_, jobs).size();
  while (conns_.size() < std::min(units, size_t(jobs))) add_worker();
}

void InitialCopy::add_worker() {
  pg::Connection c = pg::Connection::open(conninfo_);
  c.exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", "starting the copy transaction");
  c.exec("SET TRANSACTION SNAPSHOT " + c.quote_literal(snapshot_), "importing the snapshot");
  conns_.push_back(std::move(c));
}

std::vector<pg::PublishedTable> InitialCopy::published_tables(const std::string& publication) {
  return pg::published_tables(conns_.at(0), publication);
}

std::vector<pg::PublishedTable> InitialCopy::published_tables(const std::string& publication,
                                                              const std::vector<uint32_t>& oids) {
  // A few tables: one lookup each; many: one pass over the publication.
  std::vector<pg::PublishedTable> out;
  if (oids.size() <= 8) {
    for (uint32_t oid : oids)
      for (auto& t : pg::published_tables_by_oid(conns_.at(0), publication, oid))
        out.push_back(std::move(t));
    return out;
  }
  for (auto& t : pg::published_tables(conns_.at(0), publication))
    if (std::find(oids.begin(), oids.end(), t.def.source_oid) != oids.end()) out.push_back(std::move(t));
  return out;
}

std::vector<uint32_t> InitialCopy::changed_since_snapshot(const std::vector<pg::PublishedTable>& tables) {
  std::vector<uint32_t> changed;
  for (const auto& t : tables)
    if (!pg::unchanged_since_snapshot(conns_.at(0), t)) changed.push_back(t.def.source_oid);
  return changed;
}

// Why the locks: every worker's COPY of a table takes ACCESS SHARE and keeps it until its
// transaction ends, which is the end of the whole copy. When two workers read parts of one
// table and someone asks for ACCESS EXCLUSIVE in between (ALTER TABLE, VACUUM FULL,
// TRUNCATE), the second worker queues behind that request, which waits for the first
// worker's transaction, which waits (in this process) for the second worker: a deadlock
// PostgreSQL cannot see. So each table to split is locked in every worker up front, with
// NOWAIT, inside a savepoint: either every worker holds the lock (no exclusive request can
// then be granted before the copy ends, and no worker waits for one), or the savepoints are
// rolled back, which releases the locks, and the table is copied whole by one worker, as
// an unsplit table is.
std::vector<bool> InitialCopy::lock_split_tables(const std::vector<pg::PublishedTable>& tables,
                                                 const std::vector<CopyUnit>& planned) {
  std::vector<bool> no_split(tables.size(), false);
  for (const auto& u : planned) {
    if (!u.range || u.part != 0) continue;
    const auto& t = tables[u.table];
    std::string what = "locking " + t.def.qualified();
    size_t savepoints = 0;
    bool locked = true;
    for (auto& c : conns_) {
      c.exec("SAVEPOINT pgseed_split", what.c_str());
      ++savepoints;
      try {
        c.exec("LOCK TABLE ONLY " + t.def.qualified() + " IN ACCESS SHARE MODE NOWAIT", what.c_str());
      } catch (const Error& e) {
        if (e.sqlstate() != "55P03") throw;  // lock_not_available: someone waits for, or holds, an exclusive lock
        locked = false;
        break;
      }
    }
    for (size_t k = 0; k < savepoints; ++k) {
      if (!locked) conns_[k].exec("ROLLBACK TO SAVEPOINT pgseed_split", what.c_str());
      conns_[k].exec("RELEASE SAVEPOINT pgseed_split", what.c_str());
    }
    if (!locked) {
      no_split[u.table] = true;
      log_.info("copying " + t.def.qualified() +
                " whole: another session holds or waits for an exclusive lock on it");
    }
  }
  return no_split;
}

void InitialCopy::run(Store& store, const std::vector<pg::PublishedTable>& tables,
                      bool own_transactions, const std::atomic<bool>* stop) {
  int workers = int(conns_.size());
  std::vector<CopyUnit> units = plan_copy_units(tables, split_bytes_, workers);
  if (std::any_of(units.begin(), units.end(), [](const CopyUnit& u) { return u.range.has_value(); })) {
    std::vector<bool> no_split = lock_split_tables(tables, units);
    if (std::find(no_split.begin(), no_split.end(), true) != no_split.end())
      units = plan_copy_units(tables, split_bytes_, workers, no_split);
    for (const auto& u : units)
      if (u.range && u.part == 0)
        log_.info("copying " + tables[u.table].def.qualified() + " in " + std::to_string(u.parts) +
                  " parts of ~" +
                  (u.estimated_bytes >= (1 << 20) ? std::to_string(u.estimated_bytes >> 20) + " MB"
                                                  : std::to_string(u.estimated_bytes >> 10) + " kB"));
  }
  // A table is done when the writer has stored the rows of all its units.
  std::vector<int> parts_left(tables.size(), 0);
  for (const auto& u : units) ++parts_left[u.table];

  BoundedQueue<Batch> queue(kQueueBatches);
  std::atomic<size_t> next_unit{0};
  std::atomic<bool> abort{false};
  std::exception_ptr worker_error;
  std::mutex error_mu;

  // Progress: rows and bytes per table, counted by the writer as it stores them.
  Progress progress;
  std::vector<bool> table_done(tables.size(), false);
  for (const auto& t : tables) {
    Progress::Table pt;
    pt.name = t.def.qualified();
    pt.estimated_rows = t.estimated_rows;
    pt.estimated_bytes = t.estimated_bytes;
    progress.tables.push_back(pt);
    if (t.estimated_rows > 0) progress.estimated_rows = std::max<int64_t>(progress.estimated_rows, 0) + t.estimated_rows;
    if (t.estimated_bytes > 0) progress.estimated_bytes = std::max<int64_t>(progress.estimated_bytes, 0) + t.estimated_bytes;
  }
  auto started = std::chrono::steady_clock::now();
  auto report = [&] {
    progress.elapsed_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    for (size_t i = 0; i < tables.size(); ++i) progress.tables[i].done = table_done[i];
    if (on_progress_) on_progress_(progress);
  };


  // One reader per worker connection, made before any worker starts: the writer cancels
  // the workers' COPYs through them (from its own thread) when it fails.
  std::vector<std::unique_ptr<pg::CopyReader>> readers;
  for (auto& c : conns_) readers.push_back(std::make_unique<pg::CopyReader>(c));

  // The store's per-row encoding, where it has one, is the workers' work: the writer
  // (this thread) is the copy's bottleneck (BENCHMARKS.md, issue 16).
  std::vector<Store::RowEncoder> encoders;
  for (const auto& t : tables) encoders.push_back(store.row_encoder(t.def));

  auto worker = [&](pg::CopyReader& reader) {
    try {
      for (;;) {
        size_t ui = next_unit.fetch_add(1);
        if (ui >= units.size() || abort) break;
        const CopyUnit& unit = units[ui];
        size_t ti = unit.table;
        const auto& t = tables[ti];
        std::string what = "copying " + describe(t, unit);
        std::optional<BinaryCopyPlan> binary = plan_binary_copy(t.def.columns, t.casts_to_text_by_function);
        reader.start(pg::copy_query(t, unit.range, binary ? &binary->cast_to_text : nullptr), what);
        std::optional<CopyBinaryParser> parser;
        if (binary) parser.emplace(std::move(binary->fields));
        auto hand_over = [&](Batch& b) {
          if (encoders[ti]) b.encoded = encoders[ti](b.rows);
          return queue.push(std::move(b));
        };
        auto fresh_batch = [ti] {
          Batch b{ti, {}, {}};
          b.rows.reserve(kBatchBytes, kBatchBytes / 32);  // filled without reallocating
          return b;
        };
        Batch batch = fresh_batch();
        size_t ncols = t.def.columns.size();
        pg::CopyBuffer line;
        while (reader.next(line)) {
          if (parser)
            parser->parse(line.text(), batch.rows);  // (false: the trailer, no row)
          else
            parse_copy_text_line(line.text(), ncols, batch.rows);
          if (batch.rows.bytes() >= kBatchBytes) {
            if (!hand_over(batch)) return;  // writer gave up
            batch = fresh_batch();
          }
        }
        if (!batch.rows.empty() && !hand_over(batch)) return;
        if (!queue.push(Batch{ti, {}, {}, /*end_of_unit=*/true})) return;
      }
    } catch (...) {
      std::lock_guard lock(error_mu);
      if (!worker_error) worker_error = std::current_exception();
      abort = true;
      queue.close(/*discard=*/true);
    }
  };

  std::vector<std::thread> threads;
  std::atomic<size_t> running{conns_.size()};
  for (auto& r : readers)
    threads.emplace_back([&, rp = r.get()] {
      worker(*rp);
      if (--running == 0) queue.close();
    });

  // The writer: this thread. On failure, stop the workers before rethrowing.
  try {
    size_t since_commit = 0;
    size_t finished = 0;  // tables whose copy point the open transaction records
    // With own_transactions, the open store transaction; rolled back unless committed (a
    // worker's error, an exception here: before the workers are stopped below, which is
    // fine, since only this thread touches the store).
    std::optional<StoreTxn> txn;
    auto commit = [&] {
      txn->commit();
      tables_committed_ += finished;
      if (finished > 0) failpoint("copy-tables-committed");
      finished = 0;
      since_commit = 0;
    };
    if (own_transactions) txn.emplace(store);
    auto last_report = std::chrono::steady_clock::now();
    while (auto b = queue.pop()) {
      if (stop && stop->load()) throw CopyInterrupted{};
      if (b->end_of_unit) {
        if (--parts_left[b->table] > 0) continue;
        table_done[b->table] = true;
        if (!own_transactions) continue;
        store.set_sync_state(tables[b->table].def);
        ++finished;
        if (since_commit >= kFinishedCommitBytes) {
          commit();
          txn.emplace(store);
        }
        continue;
      }
      if (b->encoded)
        store.insert_encoded(tables[b->table].def, b->rows, std::move(b->encoded));
      else
        store.insert_batch(tables[b->table].def, b->rows);
      if (own_transactions) failpoint("copy-batch-stored");
      rows_ += b->rows.rows();
      since_commit += b->rows.bytes();
      progress.rows += b->rows.rows();
      progress.bytes += b->rows.text_bytes();
      progress.tables[b->table].rows += b->rows.rows();
      progress.tables[b->table].bytes += b->rows.text_bytes();
      if (own_transactions && since_commit >= kCommitBytes) {
        commit();
        txn.emplace(store);
      }
      auto now = std::chrono::steady_clock::now();
      if (now - last_report > std::chrono::seconds(1)) {
        report();
        if (tick_) tick_();
        last_report = now;
      }
    }
    report();
    if (own_transactions && !worker_error) commit();
  } catch (...) {
    abort = true;
    queue.close(true);
    for (auto& r : readers) r->cancel();
    for (auto& t : threads) t.join();
    readers.clear();
    conns_.clear();
    throw;
  }
  for (auto& t : threads) t.join();
  readers.clear();
  conns_.clear();
  if (worker_error) std::rethrow_exception(worker_error);
}

}  // namespace pgseed
