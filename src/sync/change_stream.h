// Positions in a fan-out change stream (NAME), shared by the hub (what its retention may
// remove) and the edges (where to start reading). The hub publishes in commit order, so
// the newest commit LSN held at or after a sequence never decreases along the stream.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "pgseed/lsn.h"
#include "nats/jet_stream.h"

namespace pgseed {

// The newest commit LSN in the change message at `seq`: none for a resync marker or a
// sequence with no message. `part_index` (optional) gets the part's index of a transaction
// published in parts (0 otherwise).
std::optional<Lsn> newest_lsn_at(nats::JetStream& js, const std::string& stream, uint64_t seq,
                                 uint32_t* part_index = nullptr);

// The first sequence within `b` whose message holds a transaction committed at or after
// `lsn` (a marker or a gap counts as the message after it), moved back to the first part
// when that message is a later part of a transaction; b.last_seq + 1 when there is none.
uint64_t first_seq_at_or_after(nats::JetStream& js, const std::string& stream, const nats::StreamBounds& b, Lsn lsn);

}  // namespace pgseed
