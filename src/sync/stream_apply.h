// StreamApply: follows the slot's pgoutput stream and applies it to the store
// (DESIGN.md steps 3-4), exactly once, confirming to the server only what is durable.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <exception>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "decode/pgoutput.h"
#include "pg/connection.h"
#include "pg/copy_buffer.h"
#include "pg/replication_connection.h"
#include "pgseed/sync.h"
#include "store/store.h"
#include "store/store_txn.h"
#include "sync/applied_collector.h"
#include "sync/hub_publisher.h"
#include "sync/logger.h"
#include "sync/stream_progress.h"
#include "sync/stream_spool.h"
#include "sync/table_sync.h"

namespace pgseed {

class StreamApply {
 public:
  // With `stop_before`, a one-shot run applies exactly the transactions that committed
  // before that WAL position and stops there (verify uses it to line the store up with
  // a snapshot taken at that position). With `publisher` (a fan-out hub), every applied
  // transaction is published too, and is acknowledged before the store commits it.
  StreamApply(const SyncOptions& options, Store& store, const Logger& log,
              const std::atomic<bool>& stop, Lsn stop_before = {}, HubPublisher* publisher = nullptr)
      : options_(options), store_(store), log_(log), stop_(stop), stop_before_(stop_before),
        publisher_(publisher), spool_(StreamSpool::dir_for(options.store)),
        applied_(options.on_commit), progress_(options.on_progress) {}

  // One-shot: applies everything the server had written when called, then returns.
  // Follow: runs until `stop`, reconnecting with backoff when the connection drops.
  void run();

 private:
  // The walsender hears from us at least this often, idle or not (also while messages keep
  // coming: a large transaction, slow applies, the replay of a streamed one), so that
  // wal_sender_timeout (60 s by default) never ends the stream.
  static constexpr auto kStatusInterval = std::chrono::seconds(10);

  // One replication session; returns when caught up (one-shot) or stopped.
  void session(bool one_shot);
  // Copies the tables in pending_sync_ under a fresh snapshot (TableSync), outside any
  // source transaction, and forgets them.
  void sync_pending_tables();
  // Compares the store's tables with the publication as the catalog shows it now and
  // queues every difference for sync_pending_tables(): tables added to the publication,
  // tables dropped or removed from it, tables whose shape changed without a row change
  // (pgoutput sends a Relation message only before the next row change of a table).
  // `with_filenodes`: also compare relfilenodes (a rewrite that kept the table's shape),
  // which only a store caught up with the stream can do: before, a TRUNCATE still to
  // be streamed would look like one.
  void reconcile_with_catalog(bool with_filenodes = true);
  // Queues the table with source OID `oid` for sync_pending_tables(); its changes are
  // skipped until then (the copy will hold them).
  void queue_sync(uint32_t oid);
  bool sync_pending(uint32_t oid) const;

  // One pgoutput message (an XLogData payload): spooled when it belongs to a segment of a
  // streamed transaction, else decoded and handled (stream_apply_in_progress.cpp).
  void on_wal_data(std::span<const uint8_t> payload);
  // A streamed transaction committed: its spooled messages are applied as those of a
  // Begin ... Commit transaction at the stream commit's LSNs.
  void on_stream_commit(const StreamCommit& c);
  void handle(const PgOutputMessage& msg);
  void on_begin(const Begin& b);
  void on_commit(const Commit& c);
  void on_relation(const Relation& r);
  // The store table a change applies to, or nullptr when the change is to be skipped.
  // `tuple_columns`: the width of the change's tuple (SIZE_MAX: none, a TRUNCATE).
  const TableDef* target(uint32_t relid, size_t tuple_columns);

  // Checks the timeline of the server this session reached (IDENTIFY_SYSTEM's) against the
  // one the store's applied LSN was reached on (this run's last session's, else the store's
  // record; sync/timeline_guard.h): logs a promotion once, throws Error(kSourceState, not
  // transient) when the store cannot follow it without diverging. Sets state_.timeline.
  void follow_timeline(pg::ReplicationConnection& repl, uint32_t tli);

  void load_tables();
  void open_store_txn();
  // Commits the open store transaction (with the state covering it) durably. While a
  // large batch commits, a helper thread reads the replication connection into backlog_
  // (so that the walsender does not stall behind the store's fsyncs and checkpoints).
  void commit_store();
  void send_status(bool reply_requested);
  // The next replication message: from backlog_ first, then from the connection (true:
  // a message in `msg`; false: nothing yet). Throws the Error that ended the stream once
  // the messages read before it are handled.
  bool next_message(pg::CopyBuffer& msg);
  // Reads messages into backlog_ (bounded) until `done` is readable; answers keepalives
  // that ask for a reply. Runs on the helper thread, the only one using the replication
  // connection then.
  void read_while_committing(int done_fd);
  // A fan-out hub: publishes a periodic snapshot when one is due (between transactions).
  void snapshot_if_due();

  const SyncOptions& options_;
  Store& store_;
  const Logger& log_;
  const std::atomic<bool>& stop_;
  Lsn stop_before_;
  bool reached_stop_before_ = false;
  HubPublisher* publisher_;

  pg::ReplicationConnection* repl_ = nullptr;
  std::optional<pg::Connection> catalog_;  // a normal connection for catalog lookups
  StoreState state_;        // what the open store transaction will commit
  Lsn durable_lsn_;         // applied LSN as last durably committed: what we confirm
  Lsn reported_lsn_;        // the flush LSN last sent to the server
  bool streaming_ = false;        // this session's START_REPLICATION succeeded
  bool streamed_before_ = false;  // some session of this run streamed
  uint32_t timeline_ = 0;         // the source's timeline as of the last session (0: none yet)
  uint32_t promoted_to_ = 0;      // the timeline a promotion seen by this run led to (0: none)
  // The open store transaction, which batches source transactions: begun by
  // open_store_txn(), committed by commit_store(), rolled back before a retry (run()) or
  // when this StreamApply goes away with it open (an error that ends the run).
  std::optional<StoreTxn> store_txn_;
  bool in_source_txn_ = false;
  bool skip_txn_ = false;
  Lsn txn_lsn_;             // commit LSN of the source transaction in hand
  std::optional<int64_t> last_commit_time_;  // of the last applied txn, not yet in state_
  // Commit time of the oldest transaction received since the last durable store commit:
  // what Progress::lag_seconds is measured from (none: everything received is durable).
  std::optional<int64_t> oldest_undurable_commit_time_;
  size_t txns_in_batch_ = 0;
  size_t changes_in_batch_ = 0;
  std::chrono::steady_clock::time_point batch_started_;
  std::chrono::steady_clock::time_point last_trim_;  // malloc_trim after a commit, once a second

  std::map<uint32_t, Relation> relations_;        // pgoutput relation id -> last Relation
  std::map<uint32_t, TableDef> tables_;           // the store's tables by source OID
  std::vector<uint32_t> pending_sync_;  // tables to (re)copy once the source txn in hand ends
  std::optional<TableSync> table_sync_;
  std::chrono::steady_clock::time_point last_schema_check_;

  struct Buffered {
    pg::CopyBuffer msg;        // a message (empty for an end marker)
    std::exception_ptr ended;  // an end marker: what ended the stream
  };
  std::deque<Buffered> backlog_;  // read during a commit, not yet handled
  size_t backlog_bytes_ = 0;
  bool backlog_ended_ = false;    // backlog_ ends with an end/error marker
  void clear_backlog();

  // Streamed transactions in progress (this session's; emptied when a session starts).
  StreamSpool spool_;
  uint64_t stream_segments_ = 0;  // spooled by this run
  uint64_t streamed_txns_ = 0;    // applied from the spool by this run

  AppliedCollector applied_;  // for on_commit: delivered after each durable store commit
  StreamProgress progress_;   // for on_progress
  uint64_t applied_txns_ = 0;
};

}  // namespace pgseed
