#include "decode/replication_frame.h"

#include <chrono>
#include <cstdio>
#include <limits>

#include "common/byte_reader.h"
#include "pgseed/error.h"

namespace pgseed {
namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;
// Days from 1970-01-01 to 2000-01-01.
constexpr int64_t kPgEpochUnixDays = kPgEpochUnixSeconds / 86'400;

void put_u64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

// Floor division: timestamps before the epoch are negative.
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

struct CivilDate {
  int64_t year;  // astronomical: 0 is 1 BC
  unsigned month;
  unsigned day;
};

// Proleptic Gregorian date of a day count since 1970-01-01. The calendar repeats every 400
// years (146097 days); counting from 0000-03-01 puts the leap day at the end of each year.
CivilDate civil_from_unix_days(int64_t days) {
  const int64_t z = days + 719'468;  // days since 0000-03-01
  const int64_t era = floor_div(z, 146'097);
  const int64_t doe = z - era * 146'097;                                         // [0, 146096]
  const int64_t yoe = (doe - doe / 1'460 + doe / 36'524 - doe / 146'096) / 365;  // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                   // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                                        // March = 0
  const unsigned day = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  const unsigned month = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return {year, month, day};
}

}  // namespace

ReplicationFrame decode_replication_frame(std::span<const uint8_t> data) {
  ByteReader r(data, "replication frame");
  uint8_t type = r.read_u8("frame type");
  switch (type) {
    case 'w': {
      XLogData m;
      m.wal_start = Lsn(r.read_u64("XLogData wal_start"));
      m.wal_end = Lsn(r.read_u64("XLogData wal_end"));
      m.send_time = r.read_i64("XLogData send_time");
      m.payload = r.read_bytes(r.remaining(), "XLogData payload");
      return m;
    }
    case 'k': {
      PrimaryKeepalive m;
      m.wal_end = Lsn(r.read_u64("keepalive wal_end"));
      m.send_time = r.read_i64("keepalive send_time");
      m.reply_requested = r.read_u8("keepalive reply flag") != 0;
      r.expect_end("keepalive");
      return m;
    }
    default: {
      char buf[48];
      if (type >= 0x20 && type < 0x7f) {
        std::snprintf(buf, sizeof buf, "'%c' (0x%02x)", static_cast<char>(type), type);
      } else {
        std::snprintf(buf, sizeof buf, "0x%02x", type);
      }
      throw Error(ErrorCategory::kDecode,
                  std::string("replication frame: unknown frame type ") + buf);
    }
  }
}

std::string encode_standby_status(Lsn write, Lsn flush, Lsn apply, int64_t client_time,
                                  bool reply_requested) {
  std::string out;
  out.reserve(1 + 4 * 8 + 1);
  out.push_back('r');
  put_u64(out, write.value);
  put_u64(out, flush.value);
  put_u64(out, apply.value);
  put_u64(out, static_cast<uint64_t>(client_time));
  out.push_back(reply_requested ? 1 : 0);
  return out;
}

int64_t pg_now_micros() {
  auto since_unix = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return since_unix.count() - kPgEpochUnixSeconds * kMicrosPerSecond;
}

std::string format_pg_timestamp(int64_t pg_micros) {
  // PostgreSQL's DT_NOBEGIN / DT_NOEND.
  if (pg_micros == std::numeric_limits<int64_t>::min()) return "-infinity";
  if (pg_micros == std::numeric_limits<int64_t>::max()) return "infinity";

  // Split into whole days and the time of day, rounding towards minus infinity; computed
  // without ever multiplying back (days * kMicrosPerDay overflows near INT64_MIN).
  int64_t days = pg_micros / kMicrosPerDay;
  int64_t of_day = pg_micros % kMicrosPerDay;
  if (of_day < 0) {
    of_day += kMicrosPerDay;
    --days;
  }
  const CivilDate date = civil_from_unix_days(days + kPgEpochUnixDays);
  const int64_t fraction = of_day % kMicrosPerSecond;
  of_day /= kMicrosPerSecond;
  const int hour = static_cast<int>(of_day / 3600);
  const int minute = static_cast<int>(of_day / 60 % 60);
  const int second = static_cast<int>(of_day % 60);

  const bool bc = date.year <= 0;
  const long long shown_year = static_cast<long long>(bc ? 1 - date.year : date.year);
  char buf[96];
  int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u %02d:%02d:%02d", shown_year, date.month,
                        date.day, hour, minute, second);
  std::string out(buf, static_cast<size_t>(n));
  if (fraction != 0) {
    std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(fraction));
    std::string frac(buf);
    while (frac.back() == '0') frac.pop_back();
    out += frac;
  }
  out += "+00";
  if (bc) out += " BC";
  return out;
}

}  // namespace pgseed
