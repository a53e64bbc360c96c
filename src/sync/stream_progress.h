// StreamProgress: SyncOptions::on_progress during the stream phase, about once a second,
// the same for a sync from the source (StreamApply) and an edge (EdgeSync).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "pgseed/lsn.h"
#include "pgseed/sync.h"

namespace pgseed {

class StreamProgress {
 public:
  explicit StreamProgress(const std::function<void(const Progress&)>& on_progress) : on_progress_(on_progress) {}

  // A session starts: elapsed_seconds counts from here, the first report is due in a second.
  void start(uint64_t applied_txns);
  // Reports, when a second has passed since the last report: `applied_txns` (this run's),
  // `durable` (the store's durable applied LSN), `lag_bytes` (-1: unknown) and the commit
  // time of the oldest transaction received but not yet durable (none: lag 0).
  void tick(uint64_t applied_txns, Lsn durable, int64_t lag_bytes, std::optional<int64_t> oldest_undurable_commit_time);

 private:
  const std::function<void(const Progress&)>& on_progress_;
  std::chrono::steady_clock::time_point started_, last_;
  uint64_t txns_at_last_ = 0;
};

}  // namespace pgseed
