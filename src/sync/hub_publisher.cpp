#include "sync/hub_publisher.h"

#include <algorithm>
#include <tuple>

#include "fanout/fanout_wire.h"
#include "fanout/snapshot_codec.h"
#include "pgseed/error.h"
#include "sync/change_stream.h"
#include "sync/failpoint.h"

namespace pgseed {

namespace {
// Room left in a message for NATS's own headers (the message id, JetStream's headers).
constexpr size_t kHeaderRoom = 4096;
constexpr size_t kMaxSnapshotChunk = size_t(512) << 10;
}  // namespace

HubPublisher::HubPublisher(const std::string& servers, const std::string& stream, double snapshot_every,
                           const Logger& log)
    : address_(nats::parse_nats_address(servers, /*with_stream=*/false)),
      names_(fanout::StreamNames::of(stream)),
      log_(log),
      snapshot_every_(snapshot_every) {
  nats::check_stream_name(stream);
}

void HubPublisher::start(Store& store) {
  pending_.clear();
  pending_lsns_.clear();
  pending_end_lsns_.clear();
  skipping_ = false;
  js_.reset();
  js_.emplace(nats::JetStream::connect(address_, "pgseed hub"));
  max_message_ = js_->max_payload() > kHeaderRoom * 2 ? js_->max_payload() - kHeaderRoom : js_->max_payload() / 2;
  // One copy per server named, at most 3 (JetStream's usual replication): a cluster of
  // three keeps the streams through the loss of one node.
  int replicas = int(std::min<size_t>(3, address_.servers.size()));
  js_->ensure_stream(names_.changes, names_.change_subject, replicas);
  js_->ensure_stream(names_.snapshots, names_.snapshot_subjects, replicas);
  published_ = stream_position();
  log_.info("publishing to NATS stream " + names_.changes + " at " + js_->servers() +
            (published_.valid() ? " (it holds transactions up to " + published_.str() + ")" : ""));
  // No snapshot yet, or the hub stopped between a resync marker and its snapshot.
  std::optional<fanout::SnapshotHeader> newest = newest_snapshot();
  newest_marker_seq_ = std::max(tail_marker_seq_, newest ? newest->marker_seq : 0);
  last_snapshot_marker_ = newest ? newest->marker_seq : 0;
  if (!newest || newest->marker_seq < tail_marker_seq_) {
    publish_snapshot(store, tail_marker_seq_);
  } else if (!same_copies(newest->tables, store.tables())) {
    // The hub stopped after a table sync was stored and before its marker was published:
    // the edges hold the tables as the newest snapshot has them, and the stream goes on
    // with the new ones. The marker and snapshot it owes come first.
    log_.info("the store's tables are not those of the newest snapshot in " + names_.snapshots +
              " (a table sync the hub stopped before publishing): publishing it now");
    tables_resynced(store, store.state().applied_lsn);
  }
}

bool HubPublisher::same_copies(std::vector<TableDef> a, std::vector<TableDef> b) {
  auto key = [](const TableDef& t) { return std::tuple(t.source_oid, t.snapshot_lsn.value, t.relfilenode, t.columns.size()); };
  auto by_oid = [](const TableDef& x, const TableDef& y) { return x.source_oid < y.source_oid; };
  std::sort(a.begin(), a.end(), by_oid);
  std::sort(b.begin(), b.end(), by_oid);
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [&](const TableDef& x, const TableDef& y) { return key(x) == key(y); });
}

std::optional<fanout::SnapshotHeader> HubPublisher::newest_snapshot() {
  std::optional<nats::StoredMessage> end = js_->last_message(names_.snapshots, names_.snapshot_end);
  if (!end) return std::nullopt;
  last_snapshot_ = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
      std::chrono::nanoseconds(end->time_ns)));
  fanout::SnapshotMessage e = fanout::decode_snapshot_message(fanout::bytes_of(end->data));
  last_snapshot_lsn_ = e.end.lsn;
  std::optional<nats::StoredMessage> head = js_->message(names_.snapshots, e.end.header_seq);
  if (!head) return std::nullopt;
  return fanout::decode_snapshot_message(fanout::bytes_of(head->data)).header;
}

Lsn HubPublisher::stream_position() {
  nats::StreamBounds b = js_->bounds(names_.changes);
  tail_marker_seq_ = 0;
  covered_ = Lsn();
  for (uint64_t seq = b.last_seq; seq >= b.first_seq && seq > 0; --seq) {
    std::optional<nats::StoredMessage> m = js_->message(names_.changes, seq);
    if (!m) continue;
    fanout::Message msg = fanout::decode_message(fanout::bytes_of(m->data));
    switch (msg.kind) {
      case fanout::Message::Kind::kTransactions:
        if (msg.transactions.empty()) break;
        covered_ = msg.transactions.back().end_lsn;
        return msg.transactions.back().final_lsn;
      case fanout::Message::Kind::kPart:
        // A transaction whose last part is missing (the hub stopped between parts) is
        // published again, whole: everything before it is in.
        covered_ = msg.lsn;
        return msg.part_index + 1 == msg.part_count ? msg.lsn : Lsn(msg.lsn.value - 1);
      case fanout::Message::Kind::kPosition:
        // Every transaction before it is in (and the hub's store is past it already). A
        // position follows a marker only once the marker's snapshot is published.
        covered_ = msg.lsn;
        return Lsn(msg.lsn.value - 1);
      case fanout::Message::Kind::kTablesResynced:
        if (tail_marker_seq_ == 0) tail_marker_seq_ = seq;
        break;  // says nothing about transactions: look further back
    }
  }
  return Lsn();
}

void HubPublisher::begin(const Begin& b) {
  skipping_ = b.final_lsn <= published_;
  if (!skipping_) encoder_.begin(b.final_lsn, b.commit_time);
}

void HubPublisher::insert(const TableDef& t, std::span<const Datum> row) {
  if (!skipping_ && encoder_.open()) encoder_.insert(t, row);
}

void HubPublisher::update(const TableDef& t, char old_kind, std::span<const Datum> old_row,
                          std::span<const Datum> new_row) {
  if (!skipping_ && encoder_.open()) encoder_.update(t, old_kind, old_row, new_row);
}

void HubPublisher::remove(const TableDef& t, char old_kind, std::span<const Datum> old_row) {
  if (!skipping_ && encoder_.open()) encoder_.remove(t, old_kind, old_row);
}

void HubPublisher::truncate(const TableDef& t) {
  if (!skipping_ && encoder_.open()) encoder_.truncate(t);
}

void HubPublisher::commit(const Commit& c) {
  if (skipping_ || !encoder_.open()) return;
  // A transaction that changed nothing the store holds is not published: an edge's LSN
  // then stays at the last transaction that mattered to it.
  if (encoder_.changes() == 0) {
    encoder_.commit(c.end_lsn);
    return;
  }
  pending_lsns_.push_back(c.commit_lsn);
  pending_end_lsns_.push_back(c.end_lsn);
  pending_.push_back(encoder_.commit(c.end_lsn));
}

uint64_t HubPublisher::publish_changes(const std::string& data, const std::string& msg_id) {
  uint64_t seq = js_->publish(names_.change_subject, data, msg_id);
  last_publish_ = std::chrono::steady_clock::now();
  return seq;
}

void HubPublisher::publish_position(Lsn durable) {
  if (!js_ || !pending_.empty() || !durable.valid() || durable <= covered_) return;
  if (std::chrono::steady_clock::now() - last_publish_ < kPositionInterval) return;
  // The id makes a republish of the same position (a restarted hub) a duplicate.
  publish_changes(fanout::encode_position(durable), "l:" + durable.str());
  covered_ = durable;
}

void HubPublisher::flush() {
  if (pending_.empty()) return;
  if (!js_) throw Error(ErrorCategory::kInternal, "HubPublisher::flush before start");
  size_t i = 0;
  while (i < pending_.size()) {
    if (fanout::transactions_message_size(pending_[i].size()) > max_message_) {
      // Too large for one message: in parts, each acknowledged before the next.
      std::vector<std::string> parts = fanout::encode_parts(pending_lsns_[i], pending_[i], max_message_);
      for (size_t p = 0; p < parts.size(); ++p)
        publish_changes(parts[p], "p:" + pending_lsns_[i].str() + ":" + std::to_string(p));
      published_ = pending_lsns_[i];
      covered_ = pending_end_lsns_[i];
      ++i;
      continue;
    }
    size_t end = i, bytes = 0;
    while (end < pending_.size() &&
           fanout::transactions_message_size(bytes + pending_[end].size()) <= max_message_) {
      bytes += pending_[end].size();
      ++end;
    }
    std::span<const std::string> batch(pending_.data() + i, end - i);
    publish_changes(fanout::encode_transactions(batch), "t:" + pending_lsns_[end - 1].str());
    published_ = pending_lsns_[end - 1];
    covered_ = pending_end_lsns_[end - 1];
    i = end;
  }
  pending_.clear();
  pending_lsns_.clear();
  pending_end_lsns_.clear();
}

void HubPublisher::tables_resynced(Store& store, Lsn applied, const std::function<void()>& tick) {
  flush();
  // No message id: a marker is never published twice (a restarted hub finds it at the
  // stream's tail and publishes only the snapshot it lacks), and two table syncs at one LSN
  // must not be taken for one.
  uint64_t seq = publish_changes(fanout::encode_tables_resynced(applied), "");
  newest_marker_seq_ = seq;
  failpoint("hub-marker-published");  // the edges wait for a snapshot not yet published
  publish_snapshot(store, seq, tick);
}

void HubPublisher::publish_snapshot(Store& store, uint64_t marker_seq, const std::function<void()>& tick) {
  StoreState st = store.state();
  fanout::SnapshotHeader h;
  h.lsn = st.applied_lsn;
  h.system_id = st.system_id;
  h.database = st.database;
  h.slot = st.slot;
  h.publication = st.publication;
  h.timeline = st.timeline;
  h.marker_seq = marker_seq;
  h.tables = store.tables();
  // The LSN and the marker name a snapshot: a republish after a crash is the same one.
  const std::string at = st.applied_lsn.str() + ":" + std::to_string(marker_seq);
  uint64_t header_seq = js_->publish(names_.snapshot_data, fanout::encode_snapshot_header(h), "h:" + at);
  uint64_t chunks = 0, rows = 0;
  const size_t limit = std::min(kMaxSnapshotChunk, max_message_);
  for (const TableDef& t : h.tables) {
    std::string chunk = fanout::begin_snapshot_chunk(h.lsn, t.source_oid);
    uint32_t in_chunk = 0;
    auto send = [&] {
      fanout::finish_snapshot_chunk(chunk, in_chunk);
      js_->publish(names_.snapshot_data, chunk, "c:" + at + ":" + std::to_string(chunks));
      ++chunks;
      failpoint("hub-snapshot-chunk-published");  // a snapshot without its end
      chunk = fanout::begin_snapshot_chunk(h.lsn, t.source_oid);
      in_chunk = 0;
      if (tick) tick();
    };
    store.scan(t, [&](const Row& row) {
      size_t before = chunk.size();
      fanout::add_snapshot_row(chunk, row);
      if (chunk.size() > limit && in_chunk > 0) {  // this row starts the next chunk
        std::string row_bytes = chunk.substr(before);
        chunk.resize(before);
        send();
        chunk += row_bytes;
      }
      ++in_chunk;
      ++rows;
    });
    if (in_chunk > 0) send();
  }
  js_->publish(names_.snapshot_end, fanout::encode_snapshot_end({h.lsn, header_seq, chunks}), "e:" + at);
  last_snapshot_ = std::chrono::system_clock::now();
  last_snapshot_lsn_ = h.lsn;
  last_snapshot_marker_ = marker_seq;
  log_.info("published a snapshot at " + at + " to NATS stream " + names_.snapshots + ": " +
            std::to_string(h.tables.size()) + " tables, " + std::to_string(rows) + " rows, " +
            std::to_string(chunks) + " chunks");
  prune(header_seq);
}

bool HubPublisher::snapshot_due() const {
  return snapshot_every_ > 0 && js_ &&
         std::chrono::system_clock::now() - last_snapshot_ >= std::chrono::duration<double>(snapshot_every_);
}

void HubPublisher::snapshot(Store& store, const std::function<void()>& tick) {
  flush();
  // Nothing stored since the newest snapshot (a quiet source): it is still current.
  if (store.state().applied_lsn == last_snapshot_lsn_ && newest_marker_seq_ == last_snapshot_marker_) {
    last_snapshot_ = std::chrono::system_clock::now();
    return;
  }
  // It covers every marker published so far: an edge that restores it skips them.
  publish_snapshot(store, newest_marker_seq_, tick);
}

void HubPublisher::prune(uint64_t header_seq) {
  // The whole snapshot before this one: its end message is the first one found walking
  // back (a snapshot cut by a crash left a header and chunks without an end: skipped).
  nats::StreamBounds sb = js_->bounds(names_.snapshots);
  std::optional<fanout::SnapshotMessage> older;
  for (uint64_t seq = header_seq - 1; seq >= sb.first_seq && seq > 0; --seq) {
    std::optional<nats::StoredMessage> m = js_->message(names_.snapshots, seq);
    if (!m) continue;
    fanout::SnapshotMessage s = fanout::decode_snapshot_message(fanout::bytes_of(m->data));
    if (s.kind == fanout::SnapshotMessage::Kind::kEnd) {
      older = s;
      break;
    }
  }
  if (!older) return;  // one whole snapshot so far: nothing to remove
  const uint64_t keep_snapshots_from = older->end.header_seq;
  // The change messages an edge restoring the older snapshot reads start at the first
  // holding a transaction at or after its LSN; the one before it stays too.
  nats::StreamBounds cb = js_->bounds(names_.changes);
  uint64_t keep_changes_from = cb.messages ? first_seq_at_or_after(*js_, names_.changes, cb, older->end.lsn) : 0;
  if (keep_changes_from > cb.first_seq) --keep_changes_from;
  bool pruned = false;
  if (keep_snapshots_from > sb.first_seq) {
    js_->purge_before(names_.snapshots, keep_snapshots_from);
    pruned = true;
  }
  if (cb.messages && keep_changes_from > cb.first_seq) {
    js_->purge_before(names_.changes, keep_changes_from);
    pruned = true;
  }
  if (pruned)
    log_.info("retention: kept the snapshots from sequence " + std::to_string(keep_snapshots_from) + " of " +
              names_.snapshots + " and the changes from sequence " + std::to_string(keep_changes_from) + " of " +
              names_.changes + " (the two newest snapshots and what follows the older one at " + older->end.lsn.str() + ")");
}

}  // namespace pgseed
