// StreamApply's part for transactions streamed while in progress (pgoutput protocol
// version 2): segments go to the spool, a stream commit applies the spooled messages as a
// Begin ... Commit transaction (the LSN rules in stream_apply.cpp hold for it unchanged).
#include <chrono>
#include <span>
#include <string>
#include <variant>

#include "pgseed/error.h"
#include "sync/failpoint.h"
#include "sync/stream_apply.h"

namespace pgseed {

void StreamApply::on_wal_data(std::span<const uint8_t> payload) {
  if (spool_.in_segment()) {
    if (!payload.empty() && payload[0] == 'E') {  // StreamStop
      spool_.end_segment();
      ++stream_segments_;
      failpoint("stream-segment-spooled");
    } else {
      spool_.append(payload);
    }
    return;
  }
  PgOutputMessage msg = decode_pgoutput(payload, /*in_stream=*/false);
  if (auto* s = std::get_if<StreamStart>(&msg)) {
    spool_.begin_segment(s->xid, s->first_segment);
  } else if (auto* c = std::get_if<StreamCommit>(&msg)) {
    on_stream_commit(*c);
  } else if (auto* a = std::get_if<StreamAbort>(&msg)) {
    uint64_t before = spool_.size_of(a->xid);
    spool_.abort(a->xid, a->subxid);
    log_.debug("streamed transaction " + std::to_string(a->xid) +
               (a->subxid == a->xid ? " aborted" : ": subtransaction " + std::to_string(a->subxid) +
                                                       " rolled back, spool " + std::to_string(before) +
                                                       " -> " + std::to_string(spool_.size_of(a->xid)) + " bytes"));
  } else if (std::holds_alternative<StreamStop>(msg)) {
    throw Error(ErrorCategory::kDecode, "pgoutput stream: stream stop outside a stream segment");
  } else {
    handle(msg);
  }
}

void StreamApply::on_stream_commit(const StreamCommit& c) {
  on_begin(Begin{.final_lsn = c.commit_lsn, .commit_time = c.commit_time, .xid = c.xid});
  if (skip_txn_) {
    // Already stored, or past a stop point: nothing of it is applied (pgoutput's Relation
    // messages only describe tables; the store's stay as they are, as on_relation does).
    spool_.discard(c.xid);
  } else {
    // The replay can take long (a transaction of millions of changes): the walsender,
    // which hears nothing from us meanwhile, is told the durable position now and then
    // (wal_sender_timeout).
    auto last_status = std::chrono::steady_clock::now();
    uint64_t n = 0;
    spool_.replay(c.xid, [&](std::span<const uint8_t> m) {
      handle(decode_pgoutput(m, /*in_stream=*/true));
      if (++n % 4096 == 0 && std::chrono::steady_clock::now() - last_status > kStatusInterval) {
        send_status(false);
        last_status = std::chrono::steady_clock::now();
      }
    });
    ++streamed_txns_;
    log_.debug("streamed transaction " + std::to_string(c.xid) + " committed at " + c.commit_lsn.str() +
               ": applied " + std::to_string(n) + " spooled messages");
  }
  on_commit(Commit{.flags = c.flags, .commit_lsn = c.commit_lsn, .end_lsn = c.end_lsn,
                   .commit_time = c.commit_time});
}

}  // namespace pgseed
