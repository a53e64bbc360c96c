// InitialCopy: copies the published tables under an exported snapshot into the store
// (DESIGN.md step 2). N worker connections import the snapshot and COPY tables in
// parallel; one writer (the calling thread) stores their rows in large transactions.
// A large regular table is cut into ranges of heap blocks, so that several workers read
// it at once (work units are (table, block range), largest first).
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pg/catalog.h"
#include "pgseed/sync.h"
#include "store/store.h"
#include "sync/logger.h"

namespace pgseed {

// Thrown by InitialCopy::run when the caller's stop flag is raised mid-copy.
struct CopyInterrupted {};

// One piece of copy work: a whole table, or one range of its heap blocks.
struct CopyUnit {
  size_t table = 0;                      // index into the tables given to plan_copy_units
  std::optional<pg::BlockRange> range;   // nullopt: the whole table
  int part = 0;                          // 0-based part of the table, of `parts`
  int parts = 1;
  int64_t estimated_bytes = -1;          // heap bytes this unit reads (for the order)
};

// Plans the work for copying `tables` with `workers` connections. A regular table
// (relkind 'r') whose own heap (heap_bytes) is larger than `split_bytes` becomes ceil(size / split_bytes)
// block ranges, at least 2, at most 4 x workers and at most one per heap block; the first
// range starts at block 0 and the last is open-ended, so together they cover every row
// version once. Nothing is split when split_bytes is 0 or there is one worker.
// `no_split[i]` (when given) keeps table i whole. Units come largest first.
std::vector<CopyUnit> plan_copy_units(const std::vector<pg::PublishedTable>& tables,
                                      uint64_t split_bytes, int workers,
                                      const std::vector<bool>& no_split = {});

class InitialCopy {
 public:
  InitialCopy(const std::string& conninfo, int jobs, const Logger& log,
              std::function<void(const Progress&)> on_progress = {},
              uint64_t split_tables_larger_than = kDefaultSplitTablesLargerThan)
      : conninfo_(conninfo),
        jobs_(jobs),
        log_(log),
        on_progress_(std::move(on_progress)),
        split_bytes_(split_tables_larger_than) {}

  // Opens the first worker connection and imports `snapshot` in it (the catalog reads
  // below go through it). Must complete while the connection that exported the snapshot
  // is still open and idle, and so must connect_workers().
  void import_snapshot(const std::string& snapshot);
  // Opens the other worker connections that copying `tables` can use: one per unit of work
  // (plan_copy_units), at most `jobs` in all, each with the snapshot imported. A copy of
  // one table that is not split thus starts one backend on the source, not `jobs`.
  void connect_workers(const std::vector<pg::PublishedTable>& tables);

  // The publication's tables as of the snapshot.
  std::vector<pg::PublishedTable> published_tables(const std::string& publication);
  // Only those with the given source OIDs (published ones; others are left out).
  std::vector<pg::PublishedTable> published_tables(const std::string& publication,
                                                   const std::vector<uint32_t>& oids);

  // pg::unchanged_since_snapshot for each of `tables`, on the first worker connection
  // (whose transaction then holds their locks): the OIDs of those that changed.
  std::vector<uint32_t> changed_since_snapshot(const std::vector<pg::PublishedTable>& tables);

  // Called on the writer's thread about once a second while rows are stored (a caller
  // that holds a replication connection answers its walsender from there).
  void set_tick(std::function<void()> tick) { tick_ = std::move(tick); }

  // Copies `tables` (whose defs already exist in the store) into the store. With
  // `own_transactions`, rows are committed in large transactions, each table's copy point
  // (tables[i].def.snapshot_lsn; the store's def awaits its copy) is recorded by
  // set_sync_state once all its rows are stored and committed soon after (so that an
  // interrupted copy keeps it: Store's bulk load), and the caller ends the copy phase with
  // its own commit; without, everything goes into the caller's open transaction.
  // With `stop`, a raised flag abandons the copy (workers cancelled) and throws
  // CopyInterrupted. Tables larger than the split threshold are read in block ranges by
  // several workers; a table is done (Progress) when all its ranges are.
  void run(Store& store, const std::vector<pg::PublishedTable>& tables,
           bool own_transactions = true, const std::atomic<bool>* stop = nullptr);

  uint64_t rows_copied() const { return rows_; }
  // With own_transactions: the tables whose copy point run() committed.
  size_t tables_committed() const { return tables_committed_; }

 private:
  std::string conninfo_;
  int jobs_;
  const Logger& log_;
  // Takes ACCESS SHARE locks on the tables to split in every worker's transaction; returns
  // the tables it could not lock everywhere without waiting (to be copied whole).
  std::vector<bool> lock_split_tables(const std::vector<pg::PublishedTable>& tables,
                                      const std::vector<CopyUnit>& planned);

  std::function<void(const Progress&)> on_progress_;
  std::function<void()> tick_;
  std::string snapshot_;  // imported by every worker connection
  void add_worker();
  uint64_t split_bytes_;
  std::vector<pg::Connection> conns_;
  uint64_t rows_ = 0;
  size_t tables_committed_ = 0;
};

}  // namespace pgseed
