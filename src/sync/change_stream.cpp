#include "sync/change_stream.h"

#include <algorithm>
#include <span>

#include "fanout/fanout_wire.h"
#include "fanout/txn_codec.h"

namespace pgseed {

std::optional<Lsn> newest_lsn_at(nats::JetStream& js, const std::string& stream, uint64_t seq, uint32_t* part_index) {
  if (part_index) *part_index = 0;
  std::optional<nats::StoredMessage> m = js.message(stream, seq);
  if (!m) return std::nullopt;
  fanout::Message msg = fanout::decode_message(fanout::bytes_of(m->data));
  switch (msg.kind) {
    case fanout::Message::Kind::kTransactions:
      if (msg.transactions.empty()) return std::nullopt;
      return msg.transactions.back().final_lsn;
    case fanout::Message::Kind::kPart:
      if (part_index) *part_index = msg.part_index;
      return msg.lsn;
    case fanout::Message::Kind::kTablesResynced:
    case fanout::Message::Kind::kPosition:
      return std::nullopt;
  }
  return std::nullopt;
}

uint64_t first_seq_at_or_after(nats::JetStream& js, const std::string& stream, const nats::StreamBounds& b, Lsn lsn) {
  if (b.messages == 0) return b.last_seq + 1;
  // The key of a sequence: the newest commit LSN at or after it (markers and gaps take the
  // next message's). Non-decreasing, since the hub publishes in commit order.
  auto key = [&](uint64_t seq) -> std::optional<Lsn> {
    for (uint64_t s = seq; s <= b.last_seq; ++s)
      if (auto k = newest_lsn_at(js, stream, s)) return k;
    return std::nullopt;
  };
  uint64_t lo = b.first_seq, hi = b.last_seq + 1;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    std::optional<Lsn> k = key(mid);
    if (!k || *k >= lsn) hi = mid;
    else lo = mid + 1;
  }
  if (lo <= b.last_seq) {
    uint32_t part = 0;
    if (newest_lsn_at(js, stream, lo, &part) && part > 0) lo -= std::min<uint64_t>(part, lo - b.first_seq);
  }
  return lo;
}

}  // namespace pgseed
