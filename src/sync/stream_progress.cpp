#include "sync/stream_progress.h"

#include <algorithm>

#include "decode/replication_frame.h"

namespace pgseed {

void StreamProgress::start(uint64_t applied_txns) {
  started_ = last_ = std::chrono::steady_clock::now();
  txns_at_last_ = applied_txns;
}

void StreamProgress::tick(uint64_t applied_txns, Lsn durable, int64_t lag_bytes,
                          std::optional<int64_t> oldest_undurable_commit_time) {
  if (!on_progress_) return;
  auto now = std::chrono::steady_clock::now();
  double dt = std::chrono::duration<double>(now - last_).count();
  if (dt < 1.0) return;
  Progress p;
  p.phase = Progress::Phase::kStream;
  p.elapsed_seconds = std::chrono::duration<double>(now - started_).count();
  p.transactions = applied_txns;
  p.transactions_per_second = double(applied_txns - txns_at_last_) / dt;
  p.applied_lsn = durable;
  p.lag_bytes = lag_bytes;
  p.lag_seconds = 0;
  if (oldest_undurable_commit_time) {
    double committed = double(kPgEpochUnixSeconds) + double(*oldest_undurable_commit_time) / 1e6;
    double wall = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    p.lag_seconds = std::max(0.0, wall - committed);
  }
  on_progress_(p);
  last_ = now;
  txns_at_last_ = applied_txns;
}

}  // namespace pgseed
