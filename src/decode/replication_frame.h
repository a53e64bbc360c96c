// The CopyBoth framing of the streaming replication protocol: what the server sends inside
// each CopyData message of START_REPLICATION, and the standby status update pgseed sends.
// Pure encoding/decoding: no I/O.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>

#include "pgseed/lsn.h"

namespace pgseed {

// Seconds from the Unix epoch (1970-01-01) to the PostgreSQL epoch (2000-01-01), UTC.
inline constexpr int64_t kPgEpochUnixSeconds = 946684800;

// 'w': WAL data; for logical replication the payload is one pgoutput message.
struct XLogData {
  Lsn wal_start;                     // WAL position of the payload
  Lsn wal_end;                       // current end of WAL on the server
  int64_t send_time = 0;             // server clock, PG epoch microseconds
  std::span<const uint8_t> payload;  // points into the decoded buffer
};

// 'k': primary keepalive. When reply_requested, answer with a standby status update soon
// (before wal_sender_timeout) or the server drops the connection.
struct PrimaryKeepalive {
  Lsn wal_end;
  int64_t send_time = 0;
  bool reply_requested = false;
};

using ReplicationFrame = std::variant<XLogData, PrimaryKeepalive>;

// Decodes one CopyData payload from the server. XLogData::payload views `data`.
// Throws pgseed::Error (kDecode) on an unknown frame type, a short frame, or trailing bytes
// after a keepalive; never reads outside `data`.
ReplicationFrame decode_replication_frame(std::span<const uint8_t> data);

// The bytes of a standby status update ('r'), to send as one CopyData message.
// write/flush/apply are the positions just past the last WAL byte received, durably
// stored, and applied; the server may recycle WAL and advance the slot's confirmed
// position up to `flush`. client_time is PG epoch microseconds (usually pg_now_micros()).
// reply_requested asks the server to answer with a keepalive at once.
std::string encode_standby_status(Lsn write, Lsn flush, Lsn apply, int64_t client_time,
                                  bool reply_requested);

// Now, in microseconds since the PostgreSQL epoch (system clock).
int64_t pg_now_micros();

// A PG epoch microsecond timestamp as PostgreSQL prints a timestamptz with TimeZone=UTC and
// DateStyle=ISO: "2026-11-21 15:25:18.123456+00", fraction trimmed of trailing zeros and
// left out when zero, " BC" appended for years before 1, "infinity"/"-infinity" for the
// two special values (INT64_MAX / INT64_MIN).
std::string format_pg_timestamp(int64_t pg_micros);

}  // namespace pgseed
