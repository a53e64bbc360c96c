#include "sync/stream_apply.h"

#include <malloc.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <cstdio>
#include <limits>

#include <thread>

#include "decode/replication_frame.h"
#include "pg/catalog.h"
#include "model/identifiers.h"
#include "pgseed/error.h"
#include "store/store_txn.h"
#include "sync/failpoint.h"
#include "sync/initial_copy.h"
#include "sync/source_identity.h"
#include "sync/timeline_guard.h"

namespace pgseed {

// The LSN rules, in one place:
//
// * The store's applied LSN is the END of the commit record of the last source transaction
//   it holds (or a WAL position the server reported when nothing was pending: every
//   transaction that committed before it has been received and stored).
// * A transaction whose commit record STARTS before the applied LSN (Begin.final_lsn <
//   applied) is already stored and is skipped. Commit records do not overlap, so a
//   transaction not yet stored starts at or after the applied LSN. The server applies the
//   same rule when we START_REPLICATION at the applied LSN, but after a server crash the
//   slot may rewind and resend: the check here is what keeps apply exactly-once.
// * A table copied later than the slot's start (added to the publication, or copied again
//   after a schema change) has its own copy point: changes of transactions committed
//   before it are in the copy, skipped (should_apply in sync/table_sync.h).
// * A Relation message or the catalog that shows a stored table in another shape than
//   the store's queues the table for a copy under a fresh snapshot (TableSync); until
//   that copy its changes are skipped (the copy holds them). So a schema change is either
//   followed exactly or the table is copied again: never applied to the wrong columns.
// * The flush LSN sent to the server is only ever durable_lsn_: what a completed, durable
//   store commit holds.
// * A fan-out hub (publisher_) publishes the transactions of a store commit to JetStream and
//   has them acknowledged before the store commits: the stream always holds at least what
//   the store holds, so durable_lsn_ is also acknowledged, and the slot is never confirmed
//   past min(stored, acknowledged). A transaction the store skips (below its LSN) is in the
//   stream already and is not published again (sync/hub_publisher.h).
// * A hub also publishes its durable LSN as a position (HubPublisher::publish_position)
//   when it has moved past the stream's last transaction, with nothing pending: the stream
//   then holds every stored transaction before it.
// * A streamed transaction (protocol version 2) is applied at its StreamCommit, through
//   the same path and rules as a Begin ... Commit one, with the commit's LSN as its
//   position; until then it is only in the spool, which is not durable. Confirming a
//   position past the start of a transaction still in progress is what PostgreSQL's own
//   apply worker does too: the slot's restart point stays before every transaction in
//   progress, and one that commits after the confirmed position is sent again, whole,
//   after a reconnect (the spool starts empty in each session). Keepalives inside a
//   segment do not move server_end (a segment is part of a transaction in hand).

namespace {
constexpr size_t kMaxTxnsPerBatch = 5000;                 // source txns per store txn
constexpr size_t kMaxChangesPerBatch = 100000;
constexpr auto kMaxBatchAge = std::chrono::milliseconds(50);
// Tables new to the store whose publication is asked about at once (sync_pending_tables).
constexpr size_t kMaxPendingLookups = 256;
// Group commit: a drained stream commits the store transaction in hand only once it is
// this old, so a busy source costs one fsync per ~10 ms rather than one per transaction
// (the latency this adds is what a --follow reader sees; well under the 100 ms target).
constexpr auto kGroupCommitDelay = std::chrono::milliseconds(10);
// One-shot runs catch up: nobody watches the store meanwhile, so fewer, larger commits.
constexpr auto kCatchUpCommitDelay = std::chrono::milliseconds(500);
// A store that spills a long transaction to its own file (Store::prefers_long_transactions:
// SQLite, through its bounded page cache) catches up without callbacks (whose pending
// transactions kMaxTxnsPerBatch bounds) committing only by age and kMaxChangesPerBatch,
// and less often: a page changed again in a later batch is then written to the WAL and
// checkpointed once, not once per batch (bench workload: -26% page writes, -21% page
// reads, half the fsyncs). RocksDB holds a transaction in memory and spills it beyond
// 8 MB: its batches stay short (Store::wants_commit ends them before they would spill).
constexpr auto kLongCatchUpCommitDelay = std::chrono::milliseconds(2000);
// A batch at least this large is committed on a helper thread while the replication
// connection is read into a backlog of at most kMaxBacklogBytes (smaller batches, e.g.
// a following run's 10 ms group commits, commit inline).
constexpr size_t kOverlapMinChanges = 2000;
constexpr size_t kMaxBacklogBytes = size_t(6) << 20;
}  // namespace

void StreamApply::run() {
  if (!options_.follow) {
    session(/*one_shot=*/true);
    return;
  }
  int backoff = 1;
  while (!stop_) {
    streaming_ = false;
    try {
      session(/*one_shot=*/false);
      return;
    } catch (const Error& e) {
      // Transient failures (Error::transient: the connection lost, the server shutting
      // down, restarting or starting up, ...) are retried; anything that needs someone to
      // act (a missing or invalidated slot, privileges, a dropped publication, the store)
      // ends the run. After a drop, the server may still hold the slot for the old
      // connection until it notices that it is gone (wal_sender_timeout): "in use" (55006)
      // is then worth a retry too. On the first attempt it means another process streams
      // from the slot: an error.
      bool slot_busy_at_start = e.sqlstate() == "55006" && !streamed_before_;
      if (!e.transient() || slot_busy_at_start) throw;
      if (store_txn_) {
        store_txn_->rollback();
        store_txn_.reset();
      }
      if (streaming_) backoff = 1;  // it had recovered: this is a new outage
      log_.warn(std::string(e.what()) + "; retrying in " + std::to_string(backoff) + "s");
      for (int i = 0; i < backoff * 10 && !stop_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      backoff = std::min(backoff * 2, 30);
    }
  }
}

void StreamApply::session(bool one_shot) {
  state_ = store_.state();
  last_commit_time_.reset();
  oldest_undurable_commit_time_.reset();
  durable_lsn_ = state_.applied_lsn;
  reported_lsn_ = Lsn();
  in_source_txn_ = false;
  store_txn_.reset();  // none is open here: run() rolls back before a retry
  relations_.clear();
  // The spool is the store's writer's: another writer (a verify beside a SQLite follower)
  // is refused here, before it empties the spool of the one that holds the store.
  store_.claim_writer();
  spool_.reset();  // what a session before (or a killed process) left: sent again
  clear_backlog();
  pending_sync_.clear();  // looked up again below
  applied_.discard();  // a rolled-back batch's: applied (and reported) again
  load_tables();

  // The replication connection first, and the checks before anything is written: with a
  // multi-host conninfo a reconnect may reach another server than the last session did (a
  // standby promoted since). It must be the same cluster and database (a promoted standby
  // keeps the system identifier), on a timeline the store can follow. The connection stays
  // idle (no command, so no wal_sender_timeout) while the tables below are synced.
  pg::ReplicationConnection repl = pg::ReplicationConnection::open(options_.source);
  pg::SystemIdentity id = repl.identify_system();
  require_same_source(state_, id, options_.store);
  follow_timeline(repl, id.timeline);

  catalog_.emplace(pg::Connection::open(options_.source));
  // A standby's synchronized copy of the slot cannot be streamed from before a promotion
  // (PostgreSQL refuses it): a --source with several hosts and no
  // target_session_attrs=read-write reached the standby while the primary was down. Worth
  // waiting for (the promotion), not a reason to give up: transient.
  if (pg::in_recovery(*catalog_))
    if (auto s = pg::slot_status(*catalog_, state_.slot, state_.applied_lsn); s && s->synced)
      throw Error(ErrorCategory::kSourceState,
                  "the source is a standby whose slot " + state_.slot + " is a copy synchronized "
                  "from its primary, usable once the standby is promoted (add "
                  "target_session_attrs=read-write to --source, so that libpq picks the primary)",
                  "", /*transient=*/true);
  // One-shot mode stops at the server's WAL position as of now.
  Lsn target = Lsn::parse(catalog_->query_value("SELECT " + pg::current_wal_lsn_sql() + "::text"));
  if (stop_before_.valid()) target = stop_before_;
  reached_stop_before_ = false;

  // A hub: connected to NATS, and the stream holds a snapshot, before anything is applied.
  if (publisher_) publisher_->start(store_);

  // What changed in the publication while no sync ran: bring those tables in line first
  // (their keepalive tick finds no repl_ yet: nothing is streamed to answer for).
  reconcile_with_catalog(/*with_filenodes=*/false);
  sync_pending_tables();

  repl_ = &repl;
  // repl_ never outlives `repl`: a session that fails leaves none behind for the next
  // one's table syncs (whose keepalive tick sends status through it) to use.
  struct Forget {
    pg::ReplicationConnection*& p;
    ~Forget() { p = nullptr; }
  } forget_repl{repl_};
  // Streaming of transactions in progress needs protocol version 2 (PostgreSQL 14+).
  const bool stream_in_progress = options_.stream_in_progress && repl.server_version() >= 140000;
  try {
    repl.start_logical(state_.slot, state_.applied_lsn,
                       {.proto_version = stream_in_progress ? 2u : 1u,
                        .publication_names = {state_.publication},
                        .streaming = stream_in_progress});
  } catch (const Error& e) {
    if (e.sqlstate() == "55006")  // transient: run() decides whether to wait for it
      throw Error(ErrorCategory::kSourceState,
                  "replication slot " + state_.slot + " is in use by another process", "55006",
                  /*transient=*/true);
    // object_not_in_prerequisite_state: PostgreSQL refuses to read from a slot that was
    // invalidated (walsender.c, StartLogicalReplication), and from one made in another
    // database.
    if (e.sqlstate() == "55000")
      throw Error(ErrorCategory::kSourceState,
                  "replication slot " + state_.slot + " cannot be used (" + e.what() + "); if "
                  "the server invalidated it (it retained more WAL than max_slot_wal_keep_size "
                  "allows), the replica cannot catch up: run pgseed drop, then sync into a new "
                  "store", e.sqlstate());
    if (e.sqlstate() == "42704" && promoted_to_ != 0)
      throw Error(ErrorCategory::kSourceState,
                  "replication slot " + state_.slot + " does not exist on the new primary "
                  "(timeline " + std::to_string(promoted_to_) + "): it was not a synchronized "
                  "failover slot on the promoted standby (that needs sync --failover, "
                  "sync_replication_slots = on on the standby, and the slot synced and not "
                  "temporary there before the promotion); the store, at " +
                  state_.applied_lsn.str() + ", cannot catch up: copy every table again with "
                  "pgseed sync --reseed (or sync into a new store)", "42704");
    if (e.sqlstate() == "42704")
      throw Error(ErrorCategory::kSourceState,
                  "replication slot " + state_.slot + " no longer exists on the source; the "
                  "replica cannot be caught up: re-sync into a new store", "42704");
    throw;
  }
  streaming_ = streamed_before_ = true;
  log_.info("streaming from " + state_.applied_lsn.str() +
            (one_shot ? " until " + target.str() : std::string(" (follow)")));

  auto last_status = std::chrono::steady_clock::now();
  // Tells the server how far the store is durable, now (and when it was last told).
  auto report_status = [&] {
    send_status(false);
    last_status = std::chrono::steady_clock::now();
  };
  auto last_ping = last_status;
  Lsn server_end;         // the newest WAL end the server reported while we were idle
  auto server_end_moved = last_status;
  auto last_flush_check = last_status;
  bool stopping = false;
  const bool long_catch_up = one_shot && !options_.on_commit && store_.prefers_long_transactions();
  const auto group_delay = !one_shot     ? std::chrono::milliseconds(kGroupCommitDelay)
                           : long_catch_up ? std::chrono::milliseconds(kLongCatchUpCommitDelay)
                                           : std::chrono::milliseconds(kCatchUpCommitDelay);
  const size_t max_txns = long_catch_up ? std::numeric_limits<size_t>::max() : kMaxTxnsPerBatch;
  Lsn wal_end_seen;  // the newest WAL end the server mentioned, for lag
  progress_.start(applied_txns_);
  bool reconciled_at_end = false;
  last_schema_check_ = std::chrono::steady_clock::now();
  const auto schema_check_every = std::chrono::milliseconds(
      int64_t(std::max(0.05, options_.schema_check_interval_seconds) * 1000));
  for (;;) {
    if (!in_source_txn_ && pending_sync_.empty() && (stop_ || stopping)) {
      // A one-shot run ends with the store's tables in line with the catalog: DDL that no
      // row change followed is in no Relation message (verify uses its own snapshot).
      if (stopping && !stop_ && !reconciled_at_end && !stop_before_.valid()) {
        reconciled_at_end = true;
        reconcile_with_catalog();
        sync_pending_tables();
      }
      break;
    }
    if (reached_stop_before_) {
      sync_pending_tables();  // tables new before the stop point are in the store at it
      break;
    }
    int64_t lag_bytes = !wal_end_seen.valid()        ? -1
                        : wal_end_seen > durable_lsn_ ? int64_t(wal_end_seen.value - durable_lsn_.value)
                                                      : 0;
    progress_.tick(applied_txns_, durable_lsn_, lag_bytes, oldest_undurable_commit_time_);
    pg::CopyBuffer msg;
    if (next_message(msg)) {
      auto frame = decode_replication_frame(msg.bytes());
      if (auto* x = std::get_if<XLogData>(&frame)) {
        wal_end_seen = std::max(wal_end_seen, x->wal_end);
        on_wal_data(x->payload);
      } else {
        const auto& k = std::get<PrimaryKeepalive>(frame);
        wal_end_seen = std::max(wal_end_seen, k.wal_end);
        // Between transactions, everything that committed before wal_end was received.
        if (!in_source_txn_ && !spool_.in_segment() && k.wal_end > server_end) {
          server_end = k.wal_end;
          server_end_moved = std::chrono::steady_clock::now();
        }
        if (k.reply_requested) report_status();
      }
      if (std::chrono::steady_clock::now() - last_status > kStatusInterval) report_status();
      const bool batch_due =
          store_txn_ && !in_source_txn_ &&
          (txns_in_batch_ >= max_txns || changes_in_batch_ >= kMaxChangesPerBatch ||
           store_.wants_commit() ||
           std::chrono::steady_clock::now() - batch_started_ > std::max<std::chrono::milliseconds>(kMaxBatchAge, group_delay));
      // A stored table to copy again is copied once the transaction in hand is over.
      // Tables new to the store wait until the store batch ends or the stream pauses, so
      // that a migration-heavy stream (a table created and dropped per transaction) asks
      // the catalog once per batch, not once per transaction: their changes meanwhile are
      // skipped as those of any table not in the store (the copy, under a later snapshot,
      // holds them), and after a crash the start's reconcile finds the published ones.
      if (!in_source_txn_ && !pending_sync_.empty() &&
          (batch_due || pending_sync_.size() >= kMaxPendingLookups ||
           std::any_of(pending_sync_.begin(), pending_sync_.end(), [&](uint32_t oid) { return tables_.count(oid) > 0; })))
        sync_pending_tables();
      if (batch_due && store_txn_) {
        commit_store();
        // Under a steady writer the stream may never drain: the slot hears of each durable
        // batch as it commits, not only at the status interval.
        if (durable_lsn_ > reported_lsn_) report_status();
      }
      if (!in_source_txn_) snapshot_if_due();
      continue;
    }

    // Nothing buffered: the stream is drained for now. Make what we have durable, and say
    // so at once: the slot then releases WAL, and a watcher of the slot sees the progress.
    if (!in_source_txn_) {
      if (!pending_sync_.empty()) sync_pending_tables();
      if (store_txn_ && (std::chrono::steady_clock::now() - batch_started_ >= group_delay ||
                              stop_ || (one_shot && state_.applied_lsn >= target)))
        commit_store();
      snapshot_if_due();
      if (durable_lsn_ > reported_lsn_) report_status();
      // Idle with nothing pending: move the applied LSN to where the server is, so the
      // slot does not retain WAL for changes that do not concern us.
      if (server_end > state_.applied_lsn && (one_shot || std::chrono::steady_clock::now() - last_status > std::chrono::seconds(1))) {
        open_store_txn();
        state_.applied_lsn = stop_before_.valid() ? std::min(server_end, stop_before_) : server_end;
        commit_store();
        report_status();
      }
      // A hub: the stream says how far the store is durable, also when the source wrote
      // nothing it stores (an edge's verify waits for the stream to pass its point).
      if (publisher_ && !store_txn_) publisher_->publish_position(durable_lsn_);
      if (one_shot && state_.applied_lsn >= target) stopping = true;
      // Following: DDL that no row change followed reaches the store through the catalog.
      if (!one_shot && options_.schema_check_interval_seconds > 0 && !stop_ &&
          std::chrono::steady_clock::now() - last_schema_check_ >= schema_check_every) {
        reconcile_with_catalog();
        sync_pending_tables();
      }
      // The server has sent everything it has flushed and its position stands still:
      // nothing committed before `target` can still be on its way (guards against a
      // target inside WAL that is written but never reported, e.g. a page boundary).
      // A still position alone proves nothing: the walsender reports no progress while
      // it decodes a large transaction (one that touches only unpublished tables sends
      // nothing for many seconds), so its position must also have reached the WAL the
      // server has flushed by now.
      if (one_shot && !stopping && server_end.valid() && server_end >= state_.applied_lsn &&
          std::chrono::steady_clock::now() - server_end_moved > std::chrono::seconds(5) &&
          std::chrono::steady_clock::now() - last_flush_check > std::chrono::seconds(1)) {
        last_flush_check = std::chrono::steady_clock::now();
        Lsn flushed = Lsn::parse(catalog_->query_value("SELECT " + pg::current_wal_flush_lsn_sql() + "::text"));
        if (server_end >= flushed) stopping = true;
      }
      if (stopping || stop_) continue;
    }
    auto now = std::chrono::steady_clock::now();
    if (now - last_status > kStatusInterval) report_status();
    // In one-shot mode ask the server where it is, so that we learn when we are done
    // even if nothing more is published.
    if (one_shot && !in_source_txn_ && now - last_ping > std::chrono::milliseconds(100)) {
      send_status(true);
      last_ping = now;
    }
    int wait_ms = 100;
    if (store_txn_ && !in_source_txn_) {  // wake up in time for the group commit
      auto due = batch_started_ + group_delay - std::chrono::steady_clock::now();
      wait_ms = int(std::clamp<int64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(due).count() + 1, 1, 100));
    }
    repl.wait_readable(std::chrono::milliseconds(wait_ms));
  }

  // Done: everything is durable; tell the server, end the stream cleanly so that it has
  // processed our last status before we go.
  if (store_txn_) commit_store();
  send_status(false);
  repl.end_stream();
  clear_backlog();
  repl_ = nullptr;
  spool_.reset();
  log_.info("applied " + std::to_string(applied_txns_) + " transactions" +
            (streamed_txns_ ? " (" + std::to_string(streamed_txns_) + " streamed while in progress, in " +
                                  std::to_string(stream_segments_) + " segments)"
                            : "") +
            "; store at " + state_.applied_lsn.str());
}

void StreamApply::follow_timeline(pg::ReplicationConnection& repl, uint32_t tli) {
  // The timeline the store's applied LSN was reached on: the last session's of this run,
  // else the one the store recorded with it (0: not known, a store of an older pgseed,
  // taken to be the source's). The store records the new one with its next commit.
  uint32_t was = timeline_ != 0 ? timeline_ : state_.timeline;
  if (was == 0 || tli == was) {
    timeline_ = state_.timeline = tli;
    return;
  }
  std::vector<pg::TimelineSwitch> history;
  if (tli > was) history = repl.timeline_history(tli);
  // state_ is what the store holds durably (read at the session's start).
  TimelineVerdict v = check_timeline_change(was, tli, history, state_.applied_lsn);
  if (!v.follow) throw Error(ErrorCategory::kSourceState, v.message);
  log_.info("the source is on timeline " + std::to_string(tli) + " now (was " +
            std::to_string(was) + ", which ended at " + v.switchpoint.str() +
            "): a standby was promoted; continuing from " + state_.applied_lsn.str());
  timeline_ = promoted_to_ = state_.timeline = tli;
}

void StreamApply::handle(const PgOutputMessage& msg) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, Begin>) {
          on_begin(m);
        } else if constexpr (std::is_same_v<T, Commit>) {
          on_commit(m);
        } else if constexpr (std::is_same_v<T, Relation>) {
          on_relation(m);
        } else if constexpr (std::is_same_v<T, Insert>) {
          if (const TableDef* t = target(m.relid, m.new_tuple.size())) {
            store_.upsert(*t, m.new_tuple);
            if (publisher_) publisher_->insert(*t, m.new_tuple);
            applied_.change(*t, ChangeKind::kInsert, m.new_tuple);
          }
        } else if constexpr (std::is_same_v<T, Update>) {
          if (const TableDef* t = target(m.relid, m.new_tuple.size())) {
            store_.update(*t, m.old_tuple, m.new_tuple);
            if (publisher_) publisher_->update(*t, m.old_kind, m.old_tuple, m.new_tuple);
            applied_.update(*t, m.old_tuple, m.new_tuple);
          }
        } else if constexpr (std::is_same_v<T, Delete>) {
          if (const TableDef* t = target(m.relid, m.old_tuple.size())) {
            store_.remove(*t, m.old_tuple);
            if (publisher_) publisher_->remove(*t, m.old_kind, m.old_tuple);
            applied_.change(*t, ChangeKind::kDelete, m.old_tuple);
          }
        } else if constexpr (std::is_same_v<T, Truncate>) {
          for (uint32_t relid : m.relids)
            if (const TableDef* t = target(relid, SIZE_MAX)) {
              store_.truncate(*t);
              if (publisher_) publisher_->truncate(*t);
              // The table has a new relfilenode now, which no reconcile should take for
              // a rewrite: it is unknown until the table is next copied.
              if (t->relfilenode != 0) {
                TableDef& mine = tables_.at(relid);
                mine.relfilenode = 0;
                store_.set_sync_state(mine);
              }
              applied_.change(*t, ChangeKind::kTruncate, {});
            }
        }
        // Origin, Type, Message: nothing to store. Stream*: on_wal_data's.
      },
      msg);
}

void StreamApply::open_store_txn() {
  if (store_txn_) return;
  store_txn_.emplace(store_);
  txns_in_batch_ = changes_in_batch_ = 0;
  batch_started_ = std::chrono::steady_clock::now();
}

void StreamApply::commit_store() {
  if (!store_txn_) return;
  // A hub: the change stream holds what the store is about to hold before it holds it
  // (so the slot, confirmed up to the store's durable LSN, is never confirmed beyond what
  // JetStream acknowledged). A failure here leaves the store transaction to be rolled back.
  if (publisher_) {
    publisher_->flush();
    failpoint("hub-published-before-commit");  // in the stream, not yet in the store
  }
  if (last_commit_time_) {  // formatted once per store commit, not per transaction
    state_.last_commit_time = format_pg_timestamp(*last_commit_time_);
    last_commit_time_.reset();
  }
  std::exception_ptr read_failed;  // reported once the commit is over, like a later read
  if (repl_ && changes_in_batch_ >= kOverlapMinChanges) {
    // A helper thread has the replication connection to itself until it is told `done`
    // (this thread does not touch libpq meanwhile); the store stays on this thread (its
    // memory stays in this thread's malloc arena). durable_lsn_ moves only once the
    // commit has returned.
    int done = eventfd(0, EFD_CLOEXEC);
    if (done < 0) throw Error(ErrorCategory::kStore, "eventfd failed");
    std::thread reader([&] {
      try {
        read_while_committing(done);
      } catch (...) {
        read_failed = std::current_exception();
      }
    });
    std::exception_ptr failed;
    try {
      store_.write_state(state_);
      store_txn_->commit();
    } catch (...) {
      failed = std::current_exception();
    }
    uint64_t one = 1;
    (void)!write(done, &one, sizeof one);
    reader.join();
    close(done);
    if (failed) std::rethrow_exception(failed);
  } else {
    store_.write_state(state_);
    store_txn_->commit();
  }
  store_txn_.reset();
  // A long catch-up frees and allocates megabytes per commit (large transactions, the
  // backlog read meanwhile, RocksDB's buffers) from several threads; glibc keeps much of
  // what was freed. Giving it back once a second after a commit cost no measurable CPU and
  // lowered the 10M-row RocksDB catch-up's peak RSS by ~4 MB (BENCHMARKS.md).
  if (auto now = std::chrono::steady_clock::now(); now - last_trim_ > std::chrono::seconds(1)) {
    malloc_trim(0);
    last_trim_ = now;
  }
  durable_lsn_ = state_.applied_lsn;
  oldest_undurable_commit_time_.reset();
  applied_.deliver();
  if (read_failed) std::rethrow_exception(read_failed);
}

void StreamApply::on_begin(const Begin& b) {
  if (stop_before_.valid() && b.final_lsn >= stop_before_) {
    // Everything before stop_before_ is applied; this transaction is not ours to take.
    reached_stop_before_ = true;
    skip_txn_ = true;
    if (state_.applied_lsn < stop_before_) {
      open_store_txn();
      state_.applied_lsn = stop_before_;
    }
    return;
  }
  in_source_txn_ = true;
  txn_lsn_ = b.final_lsn;
  skip_txn_ = b.final_lsn < state_.applied_lsn;  // already stored (see the rules above)
  if (skip_txn_) return;
  if (!oldest_undurable_commit_time_) oldest_undurable_commit_time_ = b.commit_time;
  open_store_txn();
  if (publisher_) publisher_->begin(b);
  applied_.begin(b.final_lsn, b.commit_time);
}

void StreamApply::on_commit(const Commit& c) {
  in_source_txn_ = false;
  if (skip_txn_) return;
  if (publisher_) publisher_->commit(c);
  state_.applied_lsn = c.end_lsn;
  last_commit_time_ = c.commit_time;  // into state_ by commit_store()
  ++txns_in_batch_;
  ++applied_txns_;
  applied_.end();
}

const TableDef* StreamApply::target(uint32_t relid, size_t tuple_columns) {
  if (skip_txn_) return nullptr;
  auto it = tables_.find(relid);
  if (it == tables_.end()) return nullptr;  // not (yet) in the store: copied later
  if (!should_apply(it->second, txn_lsn_)) return nullptr;  // already in its copy
  if (sync_pending(relid)) return nullptr;  // to be copied again: the copy holds it
  if (tuple_columns != SIZE_MAX && tuple_columns != it->second.columns.size()) {
    // A tuple of another shape than the store's table, with no Relation message that
    // said so: never apply it to the wrong columns; copy the table again.
    log_.warn("table " + it->second.qualified() + ": a change has " + std::to_string(tuple_columns) +
              " columns, the store's table " + std::to_string(it->second.columns.size()) +
              ": copying it again");
    queue_sync(relid);
    return nullptr;
  }
  ++changes_in_batch_;
  return &it->second;
}

void StreamApply::load_tables() {
  tables_.clear();
  for (auto& t : store_.tables()) tables_[t.source_oid] = t;
}

void StreamApply::on_relation(const Relation& r) {
  relations_[r.oid] = r;
  // A transaction that is already stored (resent after the slot rewound) describes the
  // table as it was then: the store's table may be newer, so it is left alone.
  if (skip_txn_) return;
  auto it = tables_.find(r.oid);
  if (it == tables_.end()) {
    // Not in the store: added to the publication since, or created since (FOR ALL
    // TABLES). Copied consistently once the transaction in hand is over.
    queue_sync(r.oid);
    return;
  }
  // The copy is newer than this transaction: it has the shape that counts.
  if (!should_apply(it->second, txn_lsn_)) return;
  if (!relation_differs(it->second, r)) return;
  if (!sync_pending(r.oid))
    log_.info("table " + it->second.qualified() + " changed on the source (now " + quote_ident(r.nspname) +
              "." + quote_ident(r.relname) + ", " + std::to_string(r.columns.size()) +
              " columns): copying it again");
  queue_sync(r.oid);
}

void StreamApply::queue_sync(uint32_t oid) {
  if (!sync_pending(oid)) pending_sync_.push_back(oid);
}

bool StreamApply::sync_pending(uint32_t oid) const {
  return std::find(pending_sync_.begin(), pending_sync_.end(), oid) != pending_sync_.end();
}

void StreamApply::sync_pending_tables() {
  if (pending_sync_.empty()) return;
  // Tables new to the store that the publication no longer has (created and dropped
  // since, the common case of a migration-heavy stream) cost a share of one catalog
  // lookup for all of them, not a snapshot.
  std::vector<uint32_t> unknown, oids;
  for (uint32_t oid : pending_sync_)
    if (!tables_.count(oid)) unknown.push_back(oid);
  std::vector<uint32_t> live = pg::published_among(*catalog_, state_.publication, unknown);
  for (uint32_t oid : pending_sync_)
    if (tables_.count(oid) || std::find(live.begin(), live.end(), oid) != live.end()) oids.push_back(oid);
  pending_sync_.clear();
  if (oids.empty()) return;
  commit_store();  // the copy's own store transaction follows
  if (!table_sync_)
    table_sync_.emplace(options_.source, log_, SlotCreationContext{.primary = options_.primary, .stop = &stop_});
  TableSync::Outcome outcome;
  try {
    outcome = table_sync_->sync(store_, state_, oids, [this] { send_status(false); });
  } catch (const CopyInterrupted&) {
    // Stopped while a standby's slot for the snapshot was awaited: nothing was copied. The
    // stored ones among these tables wait for their copy durably (the next session's start
    // makes it); the others the next session finds in the publication again.
    StoreTxn txn(store_);
    for (uint32_t oid : oids)
      if (auto it = tables_.find(oid); it != tables_.end()) {
        TableDef t = it->second;
        t.snapshot_lsn = TableDef::kAwaitingCopy;
        store_.set_sync_state(t);
      }
    txn.commit();
    log_.info("stopped while waiting for a snapshot; the next sync copies the tables it was for");
    return;
  }
  failpoint("after-table-sync");  // the tables are durable at their copy point, the stream is not past it
  for (const auto& name : outcome.copied)
    log_.info("table " + name + " copied at " + outcome.point.str());
  for (const auto& name : outcome.dropped)
    log_.warn("table " + name + " is no longer published (dropped, or removed from the publication): removed from the store");
  load_tables();
  last_schema_check_ = std::chrono::steady_clock::now();
  // A hub's edges get the copied tables through a new snapshot (their rows are in no
  // change message).
  if (publisher_ && (!outcome.copied.empty() || !outcome.dropped.empty()))
    publisher_->tables_resynced(store_, store_.state().applied_lsn, [this] { send_status(false); });
}

void StreamApply::snapshot_if_due() {
  if (!publisher_ || !publisher_->snapshot_due()) return;
  commit_store();  // the snapshot is of a durable store, every transaction of it published
  publisher_->snapshot(store_, [this] { send_status(false); });
}

void StreamApply::reconcile_with_catalog(bool with_filenodes) {
  last_schema_check_ = std::chrono::steady_clock::now();
  std::vector<pg::PublishedTable> published = pg::published_tables_now(*catalog_, state_.publication);
  std::map<uint32_t, const TableDef*> by_oid;
  for (const auto& t : published) by_oid[t.def.source_oid] = &t.def;
  for (const auto& [oid, stored] : tables_) {
    auto it = by_oid.find(oid);
    if (it == by_oid.end()) {
      queue_sync(oid);  // dropped, or no longer published: TableSync removes it
    } else if (stored.awaiting_copy()) {
      queue_sync(oid);  // pgseed resync, or a reseed under a new slot
    } else if (catalog_differs(stored, *it->second, with_filenodes)) {
      log_.info("table " + stored.qualified() + " differs from the source's catalog (now " +
                it->second->qualified() + ", " + std::to_string(it->second->columns.size()) +
                " columns): copying it again");
      queue_sync(oid);
    }
  }
  for (const auto& t : published)
    if (!tables_.count(t.def.source_oid)) queue_sync(t.def.source_oid);
}

bool StreamApply::next_message(pg::CopyBuffer& msg) {
  if (backlog_.empty()) return repl_->receive(msg);
  Buffered b = std::move(backlog_.front());
  backlog_.pop_front();
  if (b.ended) std::rethrow_exception(b.ended);
  backlog_bytes_ -= b.msg.size();
  msg = std::move(b.msg);
  return true;
}

void StreamApply::clear_backlog() {
  backlog_.clear();
  backlog_bytes_ = 0;
  backlog_ended_ = false;
}

void StreamApply::read_while_committing(int done_fd) {
  // An Error that ends the stream is queued behind the messages read before it (the loop
  // reports it once it gets there), as a read on the loop's own thread would have.
  auto queue_end = [&] {
    backlog_.push_back({pg::CopyBuffer(), std::current_exception()});
    backlog_ended_ = true;
  };
  for (;;) {
    bool can_read = !backlog_ended_ && backlog_bytes_ < kMaxBacklogBytes;
    if (can_read) {
      pg::CopyBuffer msg;
      bool got = false;
      try {
        got = repl_->receive(msg);
      } catch (const Error&) {
        queue_end();
        continue;
      }
      if (got) {
        // Keepalives that ask for a reply are answered now (with the LSN that is durable
        // now); the loop handles them again, in order, later.
        bool answer = false;
        if (msg.data()[0] == 'k')
          answer = std::get<PrimaryKeepalive>(decode_replication_frame(msg.bytes())).reply_requested;
        backlog_bytes_ += msg.size();
        backlog_.push_back({std::move(msg), nullptr});
        if (answer) send_status(false);
        continue;
      }
    }
    pollfd pfd[2] = {{done_fd, POLLIN, 0}, {repl_->socket(), POLLIN, 0}};
    if (poll(pfd, can_read ? 2 : 1, 100) < 0 && errno != EINTR)
      throw Error(ErrorCategory::kConnection, "poll failed", "", /*transient=*/true);
    if (pfd[0].revents & POLLIN) return;
    if (can_read && (pfd[1].revents & (POLLIN | POLLERR | POLLHUP))) {
      try {
        repl_->read_available();
      } catch (const Error&) {
        queue_end();
      }
    }
  }
}

void StreamApply::send_status(bool reply_requested) {
  if (!repl_) return;
  reported_lsn_ = durable_lsn_;
  repl_->send_status(durable_lsn_, durable_lsn_, durable_lsn_, reply_requested);
}

}  // namespace pgseed
