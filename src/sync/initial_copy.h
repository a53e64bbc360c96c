// InitialCopy: copies the published tables under an exported snapshot into the store
// (DESIGN.md step 2). N worker connections import the snapshot and COPY tables in
// parallel; one writer (the calling thread) stores their rows in large transactions.
#pragma once

#include <string>
#include <vector>

#include <atomic>
#include <functional>

#include "pg/catalog.h"
#include "pgseed/sync.h"
#include "store/store.h"
#include "sync/logger.h"

namespace pgseed {

// Thrown by InitialCopy::run when the caller's stop flag is raised mid-copy.
struct CopyInterrupted {};

class InitialCopy {
 public:
  InitialCopy(const std::string& conninfo, int jobs, const Logger& log,
              std::function<void(const Progress&)> on_progress = {})
      : conninfo_(conninfo), jobs_(jobs), log_(log), on_progress_(std::move(on_progress)) {}

  // Opens the worker connections and imports `snapshot` in each. Must complete while the
  // connection that exported the snapshot is still open and idle.
  void import_snapshot(const std::string& snapshot);

  // The publication's tables as of the snapshot.
  std::vector<pg::PublishedTable> published_tables(const std::string& publication);

  // Copies `tables` (whose defs already exist in the store) into the store. With
  // `own_transactions`, rows are committed in large transactions and the caller ends the
  // copy phase with its own commit; without, everything goes into the caller's open one.
  // With `stop`, a raised flag abandons the copy (workers cancelled) and throws
  // CopyInterrupted.
  void run(Store& store, const std::vector<pg::PublishedTable>& tables,
           bool own_transactions = true, const std::atomic<bool>* stop = nullptr);

  uint64_t rows_copied() const { return rows_; }

 private:
  std::string conninfo_;
  int jobs_;
  const Logger& log_;
  std::function<void(const Progress&)> on_progress_;
  std::vector<pg::Connection> conns_;
  uint64_t rows_ = 0;
};

}  // namespace pgseed
