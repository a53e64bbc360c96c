// AppliedCollector: the transactions a sync applies, as SyncOptions::on_commit sees them
// (the tables and keys each one touched), collected while they are applied and delivered
// once the store commit that holds them is durable. StreamApply (from the source) and
// EdgeSync (from a hub's NATS stream) both use it, so an edge reports its transactions as
// any other sync does.
//
// Order of calls per store transaction: for each source transaction begin(), change()...,
// end(); then, after the durable commit, deliver(); or discard() when the store
// transaction was rolled back (its transactions will be applied, and reported, again).
// Without a callback every call does nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/row.h"
#include "model/table_def.h"
#include "pgseed/sync.h"

namespace pgseed {

class AppliedCollector {
 public:
  explicit AppliedCollector(const std::function<void(const AppliedTransaction&)>& on_commit)
      : on_commit_(on_commit) {}

  bool active() const { return static_cast<bool>(on_commit_); }

  // A source transaction starts: commit LSN (its Begin.final_lsn) and commit time
  // (microseconds since 2000-01-01 UTC).
  void begin(Lsn commit_lsn, int64_t commit_time);
  // A row change of `def`: the key of `row` (every column without a key) is reported.
  // `row` is the new row of an insert or update, the old row (or key) of a delete, empty
  // for a truncate. At most kMaxChanges per transaction are kept.
  void change(const TableDef& def, ChangeKind kind, std::span<const Datum> row);
  // An update: with an old row (the key changed, or REPLICA IDENTITY FULL), a delete of
  // the old key first, so that a cache drops both.
  void update(const TableDef& def, std::span<const Datum> old_row, std::span<const Datum> new_row);
  // The transaction is applied (in the store transaction still open).
  void end();
  // The store transaction is durable: every transaction ended since the last deliver()
  // goes to the callback, in commit order.
  void deliver();
  void discard();

  static constexpr size_t kMaxChanges = 100000;

 private:
  const std::function<void(const AppliedTransaction&)>& on_commit_;
  AppliedTransaction current_;
  std::vector<AppliedTransaction> undelivered_;  // stored, waiting for the durable commit
};

}  // namespace pgseed
