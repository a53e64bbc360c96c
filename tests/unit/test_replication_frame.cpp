// CopyBoth framing: XLogData and keepalive decoding, standby status encoding, timestamps.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "common/byte_reader.h"
#include "decode/pgoutput.h"
#include "decode/replication_frame.h"
#include "pgseed/error.h"
#include "captured_hex.h"

namespace pgseed {
namespace {

using Bytes = std::vector<uint8_t>;

void put_be(Bytes& out, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

Bytes xlogdata(uint64_t start, uint64_t end, int64_t time, const std::string& payload) {
  Bytes b{'w'};
  put_be(b, start, 8);
  put_be(b, end, 8);
  put_be(b, static_cast<uint64_t>(time), 8);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

Bytes keepalive(uint64_t end, int64_t time, uint8_t reply) {
  Bytes b{'k'};
  put_be(b, end, 8);
  put_be(b, static_cast<uint64_t>(time), 8);
  b.push_back(reply);
  return b;
}

void expect_frame_error(const Bytes& data, const std::string& needle) {
  try {
    decode_replication_frame(data);
    ADD_FAILURE() << "no error, expected one mentioning: " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::kDecode);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ReplicationFrame, XLogData) {
  Bytes b = xlogdata(0x16B374D848ULL, 0x16B374D900ULL, 777, "E");
  ReplicationFrame f = decode_replication_frame(b);
  ASSERT_TRUE(std::holds_alternative<XLogData>(f));
  const XLogData& x = std::get<XLogData>(f);
  EXPECT_EQ(x.wal_start.value, 0x16B374D848ULL);
  EXPECT_EQ(x.wal_end.value, 0x16B374D900ULL);
  EXPECT_EQ(x.send_time, 777);
  ASSERT_EQ(x.payload.size(), 1u);
  EXPECT_EQ(x.payload.data(), b.data() + 25);  // a view, not a copy
  EXPECT_TRUE(std::holds_alternative<StreamStop>(decode_pgoutput(x.payload, true)));
}

TEST(ReplicationFrame, XLogDataWithEmptyPayload) {
  Bytes b = xlogdata(1, 2, 3, "");
  EXPECT_TRUE(std::get<XLogData>(decode_replication_frame(b)).payload.empty());
}

TEST(ReplicationFrame, Keepalive) {
  auto k0 = std::get<PrimaryKeepalive>(decode_replication_frame(keepalive(0x42, -1, 0)));
  EXPECT_EQ(k0.wal_end.value, 0x42u);
  EXPECT_EQ(k0.send_time, -1);
  EXPECT_FALSE(k0.reply_requested);
  auto k1 = std::get<PrimaryKeepalive>(decode_replication_frame(keepalive(0x42, 5, 1)));
  EXPECT_TRUE(k1.reply_requested);
}

TEST(ReplicationFrame, Malformed) {
  expect_frame_error({}, "frame type");
  expect_frame_error({'x', 0}, "unknown frame type 'x' (0x78)");
  expect_frame_error({0x00}, "unknown frame type 0x00");
  expect_frame_error({'r'}, "unknown frame type 'r'");  // our own message, never sent to us
  Bytes k = keepalive(1, 2, 0);
  k.push_back(0);
  expect_frame_error(k, "trailing");
  Bytes full_k = keepalive(1, 2, 1);
  for (size_t n = 0; n < full_k.size(); ++n) {
    EXPECT_THROW(decode_replication_frame(Bytes(full_k.begin(), full_k.begin() + n)), Error) << n;
  }
  Bytes full_w = xlogdata(1, 2, 3, "");
  for (size_t n = 0; n < full_w.size(); ++n) {
    EXPECT_THROW(decode_replication_frame(Bytes(full_w.begin(), full_w.begin() + n)), Error) << n;
  }
}

TEST(StandbyStatus, Layout) {
  std::string s = encode_standby_status(Lsn(0x0102030405060708ULL), Lsn(0x1112131415161718ULL),
                                        Lsn(0x2122232425262728ULL), -2, true);
  ASSERT_EQ(s.size(), 34u);
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  ByteReader r(bytes);
  EXPECT_EQ(r.read_u8(), 'r');
  EXPECT_EQ(r.read_u64(), 0x0102030405060708ULL);
  EXPECT_EQ(r.read_u64(), 0x1112131415161718ULL);
  EXPECT_EQ(r.read_u64(), 0x2122232425262728ULL);
  EXPECT_EQ(r.read_i64(), -2);
  EXPECT_EQ(r.read_u8(), 1);
  EXPECT_TRUE(r.at_end());

  std::string no_reply = encode_standby_status(Lsn(), Lsn(), Lsn(), 0, false);
  EXPECT_EQ(no_reply, std::string("r") + std::string(33, '\0'));
}

TEST(Timestamps, NowIsPgEpochMicros) {
  int64_t before = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  int64_t now = pg_now_micros();
  EXPECT_GE(now + 946684800LL * 1000000, before);
  EXPECT_LT(now + 946684800LL * 1000000 - before, 5'000'000);
  EXPECT_GT(now, 0);
}

TEST(Timestamps, FormatsLikePostgres) {
  EXPECT_EQ(format_pg_timestamp(0), "2000-01-01 00:00:00+00");
  EXPECT_EQ(format_pg_timestamp(1), "2000-01-01 00:00:00.000001+00");
  EXPECT_EQ(format_pg_timestamp(500'000), "2000-01-01 00:00:00.5+00");
  EXPECT_EQ(format_pg_timestamp(-1), "1999-12-31 23:59:59.999999+00");
  EXPECT_EQ(format_pg_timestamp(-86'400'000'000LL), "1999-12-31 00:00:00+00");
  // 2000-02-29: a leap day in a year divisible by 400.
  EXPECT_EQ(format_pg_timestamp(59LL * 86'400'000'000LL + 3'723'000'000LL),
            "2000-02-29 01:02:03+00");
  EXPECT_EQ(format_pg_timestamp(std::numeric_limits<int64_t>::max()), "infinity");
  EXPECT_EQ(format_pg_timestamp(std::numeric_limits<int64_t>::min()), "-infinity");
}

// Found by the fuzzer: the extremes next to the infinities must not overflow.
TEST(Timestamps, ExtremesAreFormattedWithoutOverflow) {
  EXPECT_EQ(format_pg_timestamp(std::numeric_limits<int64_t>::min() + 1),
            "290279-12-22 19:59:05.224193+00 BC");
  EXPECT_EQ(format_pg_timestamp(std::numeric_limits<int64_t>::max() - 1),
            "294277-01-09 04:00:54.775806+00");
}

// Cross-check against <chrono>'s calendar over many centuries, both sides of the epoch.
TEST(Timestamps, AgreesWithChronoCalendar) {
  using namespace std::chrono;
  const sys_days pg_epoch{year{2000} / January / 1};
  for (int y : {-4713, -1,   0,    1,    2,    99,   1582, 1600, 1899,  1900,
                1970,  1999, 2000, 2024, 2026, 2100, 2400, 9999, 10000, 32767}) {
    for (unsigned m = 1; m <= 12; ++m) {
      for (unsigned d : {1u, 28u, 29u, 31u}) {
        year_month_day ymd{year{y}, month{m}, day{d}};
        if (!ymd.ok()) continue;
        int64_t days = (sys_days{ymd} - pg_epoch).count();
        int64_t micros = days * 86'400'000'000LL + 15LL * 3'600'000'000LL + 25LL * 60'000'000LL +
                         18LL * 1'000'000LL + 123'456;
        char want[80];
        bool bc = y <= 0;
        std::snprintf(want, sizeof want, "%04d-%02u-%02u 15:25:18.123456+00%s", bc ? 1 - y : y, m,
                      d, bc ? " BC" : "");
        EXPECT_EQ(format_pg_timestamp(micros), want);
      }
    }
  }
}

// ---------------------------------------------------------------- captured from the server

std::vector<Bytes> load_frames() { return test_support::load_hex("frames.hex"); }

// The capture keeps the first XLogData of each pgoutput message type; in that session
// these types first appeared inside a streamed transaction.
bool first_seen_in_stream(uint8_t type) {
  return std::string_view("RYIUDTM").find(static_cast<char>(type)) != std::string_view::npos;
}

TEST(ReplicationFrameCaptured, DecodesRealSession) {
  std::vector<Bytes> frames = load_frames();
  ASSERT_EQ(frames.size(), 17u);
  int keepalives = 0, replies_requested = 0;
  std::set<uint8_t> types;
  Lsn last_keepalive_end;
  for (const Bytes& b : frames) {
    ReplicationFrame f = decode_replication_frame(b);
    if (auto* k = std::get_if<PrimaryKeepalive>(&f)) {
      ++keepalives;
      replies_requested += k->reply_requested;
      EXPECT_GE(k->wal_end, last_keepalive_end);
      last_keepalive_end = k->wal_end;
      EXPECT_EQ(format_pg_timestamp(k->send_time).substr(0, 2), "20");
      continue;
    }
    const XLogData& x = std::get<XLogData>(f);
    ASSERT_FALSE(x.payload.empty());
    EXPECT_LE(x.wal_start, x.wal_end);
    EXPECT_EQ(format_pg_timestamp(x.send_time).substr(0, 2), "20");
    types.insert(x.payload[0]);
    EXPECT_NO_THROW(decode_pgoutput(x.payload, first_seen_in_stream(x.payload[0])))
        << "type " << char(x.payload[0]);
  }
  EXPECT_EQ(keepalives, 4);
  EXPECT_EQ(replies_requested, 1);
  EXPECT_EQ(types,
            (std::set<uint8_t>{'S', 'R', 'I', 'E', 'M', 'U', 'D', 'Y', 'T', 'c', 'A', 'B', 'C'}));
}

TEST(ReplicationFrameCaptured, EveryPrefixThrows) {
  for (const Bytes& full : load_frames()) {
    const bool is_xlogdata = full[0] == 'w';
    for (size_t n = 0; n < full.size(); ++n) {
      Bytes prefix(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
      if (is_xlogdata && n >= 25) {
        // The frame header is whole; the cut falls in the pgoutput message it carries.
        const XLogData x = std::get<XLogData>(decode_replication_frame(prefix));
        EXPECT_THROW(decode_pgoutput(x.payload, first_seen_in_stream(full[25])), Error) << n;
      } else {
        EXPECT_THROW(decode_replication_frame(prefix), Error) << n;
      }
    }
  }
}

}  // namespace
}  // namespace pgseed
