// EdgeSync: an edge of the fan-out (`sync --from nats://h1:p1,.../NAME --store EDGE`). It
// never connects to PostgreSQL: it restores the newest snapshot a hub published, then
// applies the hub's change stream from the snapshot's LSN, with the rule StreamApply
// applies to the source's stream (sync/stream_apply.cpp):
//
// * The store's applied LSN is the end LSN of the last transaction it holds (or the LSN of
//   the snapshot it was restored from). A transaction whose commit LSN is below it is
//   already stored and is skipped: a message read twice (a restart, a redelivery) changes
//   nothing. Each transaction is applied in one store transaction with its end LSN.
// * A table's copy point (TableDef::snapshot_lsn, from the hub) applies as on the hub:
//   changes of transactions committed before it are in the copy (should_apply).
// * Where to start reading: the first message holding a transaction at or after the
//   applied LSN, found by bisecting the stream's sequences (the hub publishes in commit
//   order). When the stream no longer holds what the store needs (retention removed it),
//   the newest snapshot is restored instead, and the log says so.
// * A resync marker (the hub copied tables again) is followed by restoring the snapshot
//   the hub published after it: the copied tables' rows are in no change message. Which
//   markers a restored snapshot covers is told by stream sequence (the snapshot names its
//   marker's), not by LSN: a table sync does not move the hub's applied LSN. A restarted
//   edge that meets the marker of the snapshot it restored restores it again (harmless).
//
// * A position message (the hub's store is durable at X and the stream holds every
//   transaction before X that it stores) moves the applied LSN to X: every transaction
//   that committed before X and matters to the edge came in an earlier message.
// * The stream must be the one the store was made from: a store that already follows one
//   is checked against the newest snapshot's source (system, database, publication) before
//   anything is applied.
//
// One-shot: applies what the stream held when run() started, then returns. Follow: until
// stop, retrying (with backoff) while NATS cannot be reached. Until a stop point (verify,
// `stop_before`): applies exactly the transactions that committed before it, which the
// edge knows it has once the stream holds a message at or past it (a transaction, a part
// or a position); it waits for one as long as new messages keep coming, and gives up with
// Error(kSourceState) after `wait` without any (the hub is not running). The store's
// applied LSN is then the stop point, as StreamApply leaves it.
//
// SyncOptions::on_commit and on_progress are called as StreamApply calls them: on_commit
// after each durable store commit with the transactions it holds (AppliedCollector),
// on_progress about once a second (lag_bytes -1: an edge never asks the source).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "fanout/stream_names.h"
#include "fanout/txn_codec.h"
#include "nats/jet_stream.h"
#include "nats/nats_url.h"
#include "pgseed/sync.h"
#include "store/store.h"
#include "fanout/snapshot_codec.h"
#include "sync/applied_collector.h"
#include "sync/logger.h"
#include "sync/stream_progress.h"

namespace pgseed {

class EdgeSync {
 public:
  EdgeSync(const SyncOptions& options, Store& store, const Logger& log, const std::atomic<bool>& stop,
           Lsn stop_before = {}, std::chrono::seconds wait = std::chrono::seconds(60));
  void run();

  // After a run() with a stop point: whether the store holds the tables exactly as of it.
  // False when a snapshot restored on the way (the hub copied tables again) is past it;
  // the store is then consistent, at the snapshot's LSN, but not at the stop point.
  bool lined_up() const { return lined_up_; }

 private:
  // One pass: connect, restore when needed, apply; returns when done (one-shot) or stopped.
  void session(bool one_shot);
  void restore_newest_snapshot(nats::JetStream& js, const std::string& why);
  struct NewestSnapshot {
    fanout::SnapshotEnd end;
    fanout::SnapshotHeader header;
  };
  // The newest whole snapshot's end and header; throws (transient) when there is none yet.
  NewestSnapshot newest_snapshot(nats::JetStream& js);
  // Refuses a stream whose hub follows another source than the store was made from.
  void check_same_source(const fanout::SnapshotHeader& h);
  // A stop point: true (and reached_ set) once `lsn`, a position in the stream, is at or
  // past it.
  bool reached(Lsn lsn);
  // A stop point: whether the store holds anything from at or after it (a snapshot
  // restored on the way was taken later).
  bool past_stop_point() const;
  // A position message: the store holds everything before `position`.
  void advance_to(Lsn position);
  // The sequence to start reading at for `applied` (0: the stream lost what is needed).
  uint64_t find_start(nats::JetStream& js, Lsn applied);
  // Applies one change message; returns false when it is a resync marker that needs a
  // snapshot restored (one after the snapshot this run restored).
  bool apply_message(const nats::StoredMessage& m);
  void apply(const fanout::Transaction& t);
  void open_store_txn();
  void commit_store();
  void load_tables();

  const SyncOptions& options_;
  Store& store_;
  const Logger& log_;
  const std::atomic<bool>& stop_;
  const Lsn stop_before_;
  const std::chrono::seconds wait_;
  nats::NatsAddress address_;
  fanout::StreamNames names_;

  StoreState state_;
  Lsn durable_lsn_;  // the applied LSN as last durably committed
  bool reached_ = false;   // the stop point is reached
  bool lined_up_ = true;
  bool connected_ = false;  // some session of this run reached NATS
  Lsn stream_seen_;         // the newest position the stream was read at (for messages)
  std::chrono::steady_clock::time_point last_message_at_;
  std::optional<int64_t> oldest_undurable_commit_time_;
  AppliedCollector applied_;
  StreamProgress progress_;
  std::map<uint32_t, TableDef> tables_;  // by source OID
  bool store_txn_open_ = false;
  size_t txns_in_batch_ = 0;
  uint64_t applied_txns_ = 0;
  uint64_t skipped_txns_ = 0;
  std::optional<int64_t> last_commit_time_;  // of the last applied txn, not yet in state_
  uint64_t restored_marker_seq_ = 0;  // of the snapshot this run restored last
  std::string parts_;      // a transaction arriving in parts, so far
  Lsn parts_lsn_;
  uint32_t parts_next_ = 0;
  std::chrono::steady_clock::time_point batch_started_;
};

}  // namespace pgseed
