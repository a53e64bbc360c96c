// HubPublisher: the hub's side of the fan-out (`sync --publish nats://... --stream NAME`).
// StreamApply hands it every source transaction it applies, as it applies it; before each
// store commit flush() publishes them to the change stream and waits for JetStream's
// acknowledgement. So the change stream always holds at least what the store holds
// durably, and the slot (confirmed only up to the store's durable LSN) is confirmed only
// up to what is both stored and acknowledged.
//
// Exactly once into the stream: transactions are published in commit order, one message
// acknowledged before the next is sent. A hub that restarts reads the stream's last
// message and does not publish again what the stream holds (the store may be behind it:
// a crash between the acknowledgement and the store's commit); the message id (Nats-Msg-Id)
// is the commit LSN, so that JetStream drops a republish within its duplicate window too.
//
// Positions: the hub publishes only transactions that change what it stores, so a quiet
// source (or one busy with other tables) may leave the stream's last transaction far
// behind the hub's position. When the store's durable LSN has moved past what the stream's
// last message covers, and nothing was published for a second, publish_position() says so
// with a position message: every stored transaction that committed before it is in the
// stream. Edges advance to it, and a verify of an edge waits for a message at or past its
// snapshot point (sync/edge_sync.h).
//
// Snapshots: a hub's store at a durable LSN, scanned table by table outside any store
// transaction (the hub applies nothing meanwhile), published in chunks to NAME-snapshots:
// when the stream holds none, after every table sync (with a marker in the change stream
// telling edges to restore it), and every `snapshot_every` seconds (--snapshot-every).
//
// Retention: after each snapshot the hub keeps the newest two whole snapshots and removes
// (purges) what is older, in both streams: snapshots before the older kept one, and the
// change messages before the older kept snapshot's LSN except the last one before it (so
// that an edge can tell "nothing lost" from "removed": sync/edge_sync.h). An edge at or
// after the older kept snapshot's LSN finds everything it needs; one behind it restores
// the newest snapshot. The streams themselves have no limits of their own.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "decode/pgoutput.h"
#include "fanout/snapshot_codec.h"
#include "fanout/stream_names.h"
#include "fanout/txn_codec.h"
#include "nats/jet_stream.h"
#include "nats/nats_url.h"
#include "store/store.h"
#include "sync/logger.h"

namespace pgseed {

class HubPublisher {
 public:
  // `snapshot_every`: seconds between periodic snapshots (0: none).
  HubPublisher(const std::string& servers, const std::string& stream, double snapshot_every, const Logger& log);

  // At each session's start, outside any store transaction: connects (again), creates the
  // streams when missing, reads how far the change stream goes, and publishes a snapshot
  // of `store` when the snapshot stream has none. Drops anything not flushed before.
  void start(Store& store);

  // The transaction in hand, as StreamApply applies it (only what it applies).
  void begin(const Begin& b);
  void insert(const TableDef& t, std::span<const Datum> row);
  void update(const TableDef& t, char old_kind, std::span<const Datum> old_row, std::span<const Datum> new_row);
  void remove(const TableDef& t, char old_kind, std::span<const Datum> old_row);
  void truncate(const TableDef& t);
  void commit(const Commit& c);

  // Publishes every committed transaction not yet published and waits for the acks.
  // Throws Error (transient when NATS may come back); nothing is then known to be
  // published beyond what the stream's last message says (start() reads it again).
  void flush();

  // With nothing pending and the store durable at `durable`: publishes a position message
  // when `durable` is past what the stream covers and nothing was published for
  // kPositionInterval (else does nothing). Throws as flush().
  void publish_position(Lsn durable);
  static constexpr auto kPositionInterval = std::chrono::seconds(1);

  // Tables were copied again (added to the publication, a schema change, a resync) and the
  // store is durable at `applied`: a marker in the change stream, then a new snapshot.
  // `tick` is called after each snapshot chunk (StreamApply answers the walsender there).
  void tables_resynced(Store& store, Lsn applied, const std::function<void()>& tick = {});

  // Whether a periodic snapshot is due; snapshot() publishes it. Called between source
  // transactions, with the store durable and every stored transaction published.
  bool snapshot_due() const;
  void snapshot(Store& store, const std::function<void()>& tick = {});

 private:
  // `marker_seq`: the change stream's sequence of the resync marker it follows (0: none).
  void publish_snapshot(Store& store, uint64_t marker_seq, const std::function<void()>& tick = {});
  uint64_t publish_changes(const std::string& data, const std::string& msg_id);
  // The commit LSN up to which the change stream holds every transaction, and the newest
  // resync marker after the last transaction (tail_marker_seq_), read at start; sets
  // covered_.
  Lsn stream_position();
  // The header of the newest whole snapshot (none: no snapshot).
  std::optional<fanout::SnapshotHeader> newest_snapshot();
  // Whether two table lists are the same copies (each table's oid, copy point, relfilenode
  // and column count): the store's and a snapshot's.
  static bool same_copies(std::vector<TableDef> a, std::vector<TableDef> b);
  // Retention, after the snapshot whose header is at `header_seq`: removes what only
  // snapshots older than the one before it need.
  void prune(uint64_t header_seq);

  nats::NatsAddress address_;
  fanout::StreamNames names_;
  const Logger& log_;
  std::optional<nats::JetStream> js_;
  size_t max_message_ = 0;
  uint64_t tail_marker_seq_ = 0;
  uint64_t newest_marker_seq_ = 0;  // the change stream's newest resync marker known
  double snapshot_every_ = 0;
  std::chrono::system_clock::time_point last_snapshot_;  // when the newest snapshot was stored
  Lsn last_snapshot_lsn_;              // and its LSN
  uint64_t last_snapshot_marker_ = 0;  // and the marker it covers
  Lsn published_;        // every transaction whose commit LSN is at or below it is in the stream
  // Every stored transaction whose commit LSN is below it is in the stream: the end LSN of
  // the last transaction published, or the last position.
  Lsn covered_;
  std::chrono::steady_clock::time_point last_publish_;
  bool skipping_ = false;  // the transaction in hand is in the stream already
  fanout::TxnEncoder encoder_;
  std::vector<std::string> pending_;  // committed transactions' records, in commit order
  std::vector<Lsn> pending_lsns_;
  std::vector<Lsn> pending_end_lsns_;
};

}  // namespace pgseed
