#include "sync/edge_sync.h"

#include <algorithm>
#include <thread>

#include "decode/replication_frame.h"
#include "fanout/fanout_wire.h"
#include "fanout/snapshot_codec.h"
#include "nats/stream_reader.h"
#include "pgseed/error.h"
#include "store/store_txn.h"
#include "sync/change_stream.h"
#include "sync/failpoint.h"
#include "sync/table_sync.h"

namespace pgseed {

namespace {
constexpr int kFetchBatch = 256;
constexpr auto kFetchWait = std::chrono::milliseconds(500);
constexpr size_t kMaxTxnsPerBatch = 5000;
// As StreamApply's group commit: while batches keep coming full, a following edge makes
// what it applied durable (and visible to readers) at most this long after it arrived.
constexpr auto kGroupCommitDelay = std::chrono::milliseconds(10);

}  // namespace

EdgeSync::EdgeSync(const SyncOptions& options, Store& store, const Logger& log, const std::atomic<bool>& stop,
                   Lsn stop_before, std::chrono::seconds wait)
    : options_(options),
      store_(store),
      log_(log),
      stop_(stop),
      stop_before_(stop_before),
      wait_(wait),
      address_(nats::parse_nats_address(options.from, /*with_stream=*/true)),
      names_(fanout::StreamNames::of(address_.stream)),
      applied_(options.on_commit),
      progress_(options.on_progress) {}

void EdgeSync::run() {
  const bool until_point = stop_before_.valid();
  last_message_at_ = std::chrono::steady_clock::now();
  if (!options_.follow && !until_point) {
    session(/*one_shot=*/true);
    return;
  }
  int backoff = 1;
  while (!stop_) {
    try {
      session(/*one_shot=*/!options_.follow);
      return;
    } catch (const Error& e) {
      if (!e.transient()) throw;
      // Until a stop point (verify), a stream that was reached is waited for as long as
      // its hub is (a NATS node away, a snapshot not yet published after its marker); NATS
      // never reached is an error at once, as for a one-shot run.
      if (until_point && (!connected_ || std::chrono::steady_clock::now() - last_message_at_ > wait_)) throw;
      if (store_txn_open_) {
        store_.rollback();
        store_txn_open_ = false;
      }
      applied_.discard();
      log_.warn(std::string(e.what()) + "; retrying in " + std::to_string(backoff) + "s");
      for (int i = 0; i < backoff * 10 && !stop_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      backoff = until_point ? 1 : std::min(backoff * 2, 30);
    }
  }
}

void EdgeSync::load_tables() {
  tables_.clear();
  for (auto& t : store_.tables()) tables_[t.source_oid] = t;
}

void EdgeSync::session(bool one_shot) {
  nats::JetStream js = nats::JetStream::connect(address_, "pgseed edge");
  nats::StreamBounds bounds = js.bounds(names_.changes);  // throws when there is no such stream
  connected_ = true;
  parts_.clear();
  parts_next_ = 0;
  state_ = store_.state();
  durable_lsn_ = state_.applied_lsn;
  oldest_undurable_commit_time_.reset();
  last_commit_time_.reset();
  applied_.discard();  // a rolled-back batch's: applied (and reported) again
  if (state_.phase != StoreState::Phase::kStreaming)
    restore_newest_snapshot(js, "a new edge store");
  else
    check_same_source(newest_snapshot(js).header);
  load_tables();
  const bool until_point = stop_before_.valid();
  // One-shot without a stop point: what the stream held at the start.
  const bool by_seq = one_shot && !until_point;
  const uint64_t target = bounds.last_seq;
  progress_.start(applied_txns_);
  for (;;) {
    uint64_t start = find_start(js, state_.applied_lsn);
    if (start == 0) {
      restore_newest_snapshot(js, "the stream no longer holds the transactions after " +
                                      state_.applied_lsn.str() + " (removed by its retention)");
      load_tables();
      start = find_start(js, state_.applied_lsn);
      if (start == 0)
        throw Error(ErrorCategory::kSourceState,
                    "NATS stream " + names_.changes + " does not hold the transactions after the newest "
                    "snapshot (" + state_.applied_lsn.str() + "); the hub must publish a newer one");
    }
    if (until_point && past_stop_point()) {  // a snapshot restored above
      reached_ = true;
      break;
    }
    log_.info("following NATS stream " + names_.changes + " at " + js.servers() + " from sequence " +
              std::to_string(start) + " (store at " + state_.applied_lsn.str() + ")" +
              (until_point ? " until " + stop_before_.str()
               : by_seq    ? " until sequence " + std::to_string(target)
                           : std::string(" (follow)")));
    if (by_seq && start > target) break;
    nats::StreamReader reader(js, names_.changes, names_.change_subject, start);
    bool restart = false;
    uint64_t last_seq = start - 1;
    while (!restart && !stop_ && !reached_ && !(by_seq && last_seq >= target)) {
      std::vector<nats::StoredMessage> msgs = reader.fetch(kFetchBatch, kFetchWait);
      if (!msgs.empty()) last_message_at_ = std::chrono::steady_clock::now();
      for (const auto& m : msgs) {
        if (by_seq && m.seq > target) {
          last_seq = target;  // the target itself is gone (deleted): done all the same
          break;
        }
        last_seq = m.seq;
        if (!apply_message(m)) {
          fanout::Message marker = fanout::decode_message(fanout::bytes_of(m.data));
          commit_store();
          restore_newest_snapshot(js, "the hub copied tables again at " + marker.lsn.str());
          if (restored_marker_seq_ < m.seq)
            throw Error(ErrorCategory::kSourceState,
                        "the hub copied tables again at " + marker.lsn.str() + " (sequence " +
                            std::to_string(m.seq) + ") but has not published the snapshot after it yet; waiting for it",
                        "", /*transient=*/true);
          load_tables();
          restart = true;
          break;
        }
        if (reached_) break;
      }
      // A batch smaller than asked for: the stream is drained for now, so what was applied
      // is made durable (and visible) at once; a full one is followed by more at once.
      if (store_txn_open_ && (int(msgs.size()) < kFetchBatch || txns_in_batch_ >= kMaxTxnsPerBatch ||
                              std::chrono::steady_clock::now() - batch_started_ >= kGroupCommitDelay))
        commit_store();
      progress_.tick(applied_txns_, durable_lsn_, -1, oldest_undurable_commit_time_);
      if (until_point && !reached_ && msgs.empty() &&
          std::chrono::steady_clock::now() - last_message_at_ > wait_) {
        commit_store();
        throw Error(ErrorCategory::kSourceState,
                    "NATS stream " + names_.changes + " at " + js.servers() + " holds nothing at or past " +
                        stop_before_.str() + " (it goes up to " + std::max(stream_seen_, state_.applied_lsn).str() +
                        ") and had no new message for " + std::to_string(wait_.count()) +
                        " s: is its hub (pgseed sync --publish ... --stream " + names_.changes + ") running?");
      }
    }
    commit_store();
    if (!restart) break;
  }
  if (until_point && reached_) {
    lined_up_ = !past_stop_point();
    // Every transaction before the stop point is stored, none after it.
    if (lined_up_ && state_.applied_lsn < stop_before_) {
      open_store_txn();
      state_.applied_lsn = stop_before_;
      commit_store();
    }
  }
  log_.info("applied " + std::to_string(applied_txns_) + " transactions (skipped " +
            std::to_string(skipped_txns_) + " already stored); store at " + state_.applied_lsn.str());
}

bool EdgeSync::reached(Lsn lsn) {
  stream_seen_ = std::max(stream_seen_, lsn);
  if (stop_before_.valid() && lsn >= stop_before_) reached_ = true;
  return reached_;
}

bool EdgeSync::past_stop_point() const {
  if (state_.applied_lsn > stop_before_) return true;
  for (const auto& [oid, def] : tables_)
    if (!def.awaiting_copy() && def.snapshot_lsn > stop_before_) return true;
  return false;
}

void EdgeSync::advance_to(Lsn position) {
  if (position <= state_.applied_lsn) return;
  open_store_txn();
  state_.applied_lsn = position;
}

uint64_t EdgeSync::find_start(nats::JetStream& js, Lsn applied) {
  nats::StreamBounds b = js.bounds(names_.changes);
  if (b.messages == 0) return b.last_seq + 1;
  uint64_t lo = first_seq_at_or_after(js, names_.changes, b, applied);
  // Retention removed messages before the first one: unless that one still holds a
  // transaction before `applied`, what came between may be lost.
  if (b.first_seq > 1 && lo == b.first_seq) {
    std::optional<nats::StoredMessage> m = js.message(names_.changes, b.first_seq);
    if (m) {
      fanout::Message msg = fanout::decode_message(fanout::bytes_of(m->data));
      bool holds_older = msg.kind == fanout::Message::Kind::kTransactions && !msg.transactions.empty() &&
                         msg.transactions.front().final_lsn < applied;
      if (!holds_older) return 0;
    }
  }
  return lo;
}

bool EdgeSync::apply_message(const nats::StoredMessage& m) {
  fanout::Message msg = fanout::decode_message(fanout::bytes_of(m.data));
  switch (msg.kind) {
    case fanout::Message::Kind::kTransactions:
      for (const auto& t : msg.transactions) {
        if (reached(t.final_lsn)) return true;  // at or past the stop point: not ours
        apply(t);
      }
      return true;
    case fanout::Message::Kind::kPosition:
      if (!reached(msg.lsn)) advance_to(msg.lsn);
      return true;
    case fanout::Message::Kind::kPart: {
      if (reached(msg.lsn)) return true;
      if (msg.part_index == 0) {
        parts_.clear();
        parts_lsn_ = msg.lsn;
        parts_next_ = 0;
      }
      if (msg.lsn != parts_lsn_ || msg.part_index != parts_next_) {
        // A part of a transaction whose beginning was not read here: one before the
        // store's position (reading started inside it), or a broken stream.
        if (msg.lsn < state_.applied_lsn) return true;
        throw Error(ErrorCategory::kDecode, "NATS stream " + names_.changes + ": part " +
                                                std::to_string(msg.part_index) + " of transaction " +
                                                msg.lsn.str() + " without the parts before it");
      }
      parts_.append(msg.part);
      ++parts_next_;
      if (parts_next_ == msg.part_count) {
        std::string whole = std::move(parts_);
        parts_.clear();
        parts_next_ = 0;
        apply(fanout::decode_transaction(fanout::bytes_of(whole)));
      }
      return true;
    }
    case fanout::Message::Kind::kTablesResynced:
      // A marker the store is past already (restored from a snapshot after it).
      return m.seq <= restored_marker_seq_;
  }
  return true;
}

void EdgeSync::open_store_txn() {
  if (store_txn_open_) return;
  store_.begin();
  store_txn_open_ = true;
  txns_in_batch_ = 0;
  batch_started_ = std::chrono::steady_clock::now();
}

void EdgeSync::commit_store() {
  if (!store_txn_open_) return;
  if (last_commit_time_) {  // formatted once per store commit, not per transaction
    state_.last_commit_time = format_pg_timestamp(*last_commit_time_);
    last_commit_time_.reset();
  }
  store_.write_state(state_);
  store_.commit();
  store_txn_open_ = false;
  durable_lsn_ = state_.applied_lsn;
  oldest_undurable_commit_time_.reset();
  applied_.deliver();
}

void EdgeSync::apply(const fanout::Transaction& t) {
  if (t.final_lsn < state_.applied_lsn) {  // stored already (the rule above)
    ++skipped_txns_;
    return;
  }
  for (const TableDef& def : t.tables) {
    auto it = tables_.find(def.source_oid);
    if (it == tables_.end() || !it->second.same_columns(def))
      throw Error(ErrorCategory::kSourceState,
                  "transaction " + t.final_lsn.str() + " of NATS stream " + names_.changes + " changes table " +
                      def.qualified() + ", which this edge holds " +
                      (it == tables_.end() ? "not at all" : "in another shape") +
                      " (a resync of the hub's that the edge missed); sync into a new edge store");
  }
  open_store_txn();
  if (!oldest_undurable_commit_time_) oldest_undurable_commit_time_ = t.commit_time;
  applied_.begin(t.final_lsn, t.commit_time);
  for (const fanout::Change& c : t.changes) {
    const TableDef& def = tables_.at(c.table_oid);
    if (!should_apply(def, t.final_lsn)) continue;  // in the table's copy already
    switch (c.kind) {
      case 'I':
        store_.upsert(def, c.new_row);
        applied_.change(def, ChangeKind::kInsert, c.new_row);
        break;
      case 'U':
        store_.update(def, c.old_row, c.new_row);
        applied_.update(def, c.old_row, c.new_row);
        break;
      case 'D':
        store_.remove(def, c.old_row);
        applied_.change(def, ChangeKind::kDelete, c.old_row);
        break;
      case 'T':
        store_.truncate(def);
        applied_.change(def, ChangeKind::kTruncate, {});
        break;
    }
  }
  state_.applied_lsn = t.end_lsn;
  last_commit_time_ = t.commit_time;  // into state_ by commit_store()
  applied_.end();
  ++txns_in_batch_;
  ++applied_txns_;
}

EdgeSync::NewestSnapshot EdgeSync::newest_snapshot(nats::JetStream& js) {
  if (!js.stream_exists(names_.snapshots))
    throw Error(ErrorCategory::kSourceState, "NATS stream " + names_.snapshots + " does not exist at " +
                                                 js.servers() + ": no hub has published a snapshot for " +
                                                 names_.changes + " yet", "", /*transient=*/true);
  std::optional<nats::StoredMessage> end_msg = js.last_message(names_.snapshots, names_.snapshot_end);
  if (!end_msg)
    throw Error(ErrorCategory::kSourceState, "NATS stream " + names_.snapshots + " holds no whole snapshot yet",
                "", /*transient=*/true);
  fanout::SnapshotMessage end = fanout::decode_snapshot_message(fanout::bytes_of(end_msg->data));
  if (end.kind != fanout::SnapshotMessage::Kind::kEnd)
    throw Error(ErrorCategory::kDecode, "NATS stream " + names_.snapshots + ": not an end message on " + names_.snapshot_end);
  std::optional<nats::StoredMessage> head_msg = js.message(names_.snapshots, end.end.header_seq);
  if (!head_msg)
    throw Error(ErrorCategory::kSourceState, "NATS stream " + names_.snapshots + ": the newest snapshot's header (sequence " +
                                                 std::to_string(end.end.header_seq) + ") is gone", "", true);
  fanout::SnapshotMessage head = fanout::decode_snapshot_message(fanout::bytes_of(head_msg->data));
  if (head.kind != fanout::SnapshotMessage::Kind::kHeader || head.header.lsn != end.end.lsn)
    throw Error(ErrorCategory::kDecode, "NATS stream " + names_.snapshots + ": the snapshot at " + end.end.lsn.str() +
                                            " has no header at sequence " + std::to_string(end.end.header_seq));
  return {end.end, std::move(head.header)};
}

void EdgeSync::check_same_source(const fanout::SnapshotHeader& h) {
  if (state_.phase == StoreState::Phase::kEmpty || state_.system_id.empty()) return;
  if (state_.system_id != h.system_id || state_.database != h.database ||
      (state_.phase == StoreState::Phase::kStreaming && state_.publication != h.publication))
    throw Error(ErrorCategory::kStore, "store " + options_.store + " was made from another source (system " +
                                           state_.system_id + ", database " + state_.database + ", publication " +
                                           state_.publication + ") than the hub of NATS stream " + names_.changes +
                                           " publishes (system " + h.system_id + ", database " + h.database +
                                           ", publication " + h.publication + ")");
}

void EdgeSync::restore_newest_snapshot(nats::JetStream& js, const std::string& why) {
  if (store_txn_open_) commit_store();
  NewestSnapshot newest = newest_snapshot(js);
  const fanout::SnapshotEnd& end = newest.end;
  const fanout::SnapshotHeader& h = newest.header;
  check_same_source(h);
  log_.info("restoring the snapshot at " + h.lsn.str() + " from NATS stream " + names_.snapshots + " (" + why + ")");

  StoreState st;
  st.phase = StoreState::Phase::kCopying;
  st.system_id = h.system_id;
  st.database = h.database;
  // No slot: the hub's is the only one, and an edge's store must not name it (drop on an
  // edge would drop the hub's slot, sync --source would stream from it).
  st.slot.clear();
  st.publication = h.publication;
  st.timeline = h.timeline;
  st.consistent_point = h.lsn;
  st.applied_lsn = h.lsn;
  {
    StoreTxn txn(store_);
    store_.reset();
    store_.write_state(st);
    txn.commit();
  }
  store_.begin_bulk_load();
  uint64_t rows = 0;
  try {
    std::map<uint32_t, TableDef> by_oid;
    StoreTxn txn(store_);
    for (TableDef def : h.tables) {
      Lsn point = def.snapshot_lsn;
      def.snapshot_lsn = TableDef::kAwaitingCopy;  // until its rows are all stored
      store_.create_table(def);
      def.snapshot_lsn = point;
      by_oid[def.source_oid] = def;
    }
    RowBatch batch;
    for (uint64_t i = 1; i <= end.chunks; ++i) {
      std::optional<nats::StoredMessage> m = js.message(names_.snapshots, end.header_seq + i);
      if (!m)
        throw Error(ErrorCategory::kSourceState, "NATS stream " + names_.snapshots + ": chunk " + std::to_string(i) +
                                                     " of the snapshot at " + h.lsn.str() + " is gone", "", true);
      fanout::SnapshotMessage c = fanout::decode_snapshot_message(fanout::bytes_of(m->data));
      if (c.kind != fanout::SnapshotMessage::Kind::kChunk || c.chunk.lsn != h.lsn || !by_oid.count(c.chunk.table_oid))
        throw Error(ErrorCategory::kDecode, "NATS stream " + names_.snapshots + ": sequence " +
                                                std::to_string(m->seq) + " is not a chunk of the snapshot at " + h.lsn.str());
      const TableDef& def = by_oid.at(c.chunk.table_oid);
      batch.clear();
      for (const Row& r : c.chunk.rows) {
        if (r.size() != def.columns.size())
          throw Error(ErrorCategory::kDecode, "snapshot chunk of " + def.qualified() + ": a row of " +
                                                  std::to_string(r.size()) + " columns");
        for (const Datum& d : r) {
          if (d.kind == Datum::Kind::kText) batch.add_text(d.text);
          else batch.add_null();
        }
        batch.end_row();
      }
      store_.insert_batch(def, batch);
      rows += c.chunk.rows.size();
      failpoint("edge-snapshot-chunk-restored");  // a restore cut short: the next run redoes it
    }
    for (const auto& [oid, def] : by_oid) store_.set_sync_state(def);
    txn.commit();
    st.phase = StoreState::Phase::kStreaming;
    store_.finish_bulk_load(st);
  } catch (...) {
    store_.abort_bulk_load();
    throw;
  }
  state_ = st;
  restored_marker_seq_ = h.marker_seq;
  log_.info("restored " + std::to_string(h.tables.size()) + " tables, " + std::to_string(rows) + " rows; store at " +
            h.lsn.str());
}

}  // namespace pgseed
