// The timeline rules of sync/timeline_guard.h, and the parser of TIMELINE_HISTORY's file.
#include <gtest/gtest.h>

#include "pgseed/error.h"
#include "sync/timeline_guard.h"

namespace pgseed {
namespace {

TEST(TimelineHistory, ParsesPostgresFormat) {
  auto h = pg::parse_timeline_history(
      "1\t0/3000158\tno recovery target specified\n"
      "\n"
      "# a comment\n"
      "2\t1/A0000000\tat restore point \"x\"\n");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].tli, 1u);
  EXPECT_EQ(h[0].switchpoint, Lsn::parse("0/3000158"));
  EXPECT_EQ(h[1].tli, 2u);
  EXPECT_EQ(h[1].switchpoint, Lsn::parse("1/A0000000"));
  EXPECT_TRUE(pg::parse_timeline_history("").empty());
}

TEST(TimelineHistory, RefusesMalformedLines) {
  EXPECT_THROW(pg::parse_timeline_history("1\n"), Error);
  EXPECT_THROW(pg::parse_timeline_history("x\t0/1\treason\n"), Error);
  EXPECT_THROW(pg::parse_timeline_history("1\tnot-an-lsn\treason\n"), Error);
  EXPECT_THROW(pg::parse_timeline_history("2\t0/1\ta\n1\t0/2\tb\n"), Error);  // not increasing
}

const std::vector<pg::TimelineSwitch> kHistory = {{1, Lsn(1000)}, {2, Lsn(5000)}};

TEST(TimelineGuard, SameTimelineFollows) {
  EXPECT_TRUE(check_timeline_change(2, 2, {}, Lsn(999999)).follow);
}

TEST(TimelineGuard, PromotionAtOrAfterTheStoreFollows) {
  TimelineVerdict v = check_timeline_change(2, 3, kHistory, Lsn(5000));
  EXPECT_TRUE(v.follow);
  EXPECT_EQ(v.switchpoint, Lsn(5000));
  EXPECT_TRUE(check_timeline_change(2, 3, kHistory, Lsn(4000)).follow);
  // Two promotions while the follower was away: timeline 1 ended at 1000.
  EXPECT_TRUE(check_timeline_change(1, 3, kHistory, Lsn(1000)).follow);
}

TEST(TimelineGuard, StoreBeyondTheForkStops) {
  TimelineVerdict v = check_timeline_change(2, 3, kHistory, Lsn(5001));
  EXPECT_FALSE(v.follow);
  EXPECT_NE(v.message.find("0/1388"), std::string::npos) << v.message;  // the switchpoint
  EXPECT_NE(v.message.find("never received"), std::string::npos) << v.message;
  EXPECT_NE(v.message.find("--reseed"), std::string::npos) << v.message;
  EXPECT_FALSE(check_timeline_change(1, 3, kHistory, Lsn(1001)).follow);
}

TEST(TimelineGuard, OlderOrUnrelatedTimelineStops) {
  TimelineVerdict v = check_timeline_change(3, 2, {}, Lsn(1));
  EXPECT_FALSE(v.follow);
  EXPECT_NE(v.message.find("older"), std::string::npos) << v.message;
  v = check_timeline_change(4, 5, kHistory, Lsn(1));
  EXPECT_FALSE(v.follow);
  EXPECT_NE(v.message.find("does not contain timeline 4"), std::string::npos) << v.message;
}

}  // namespace
}  // namespace pgseed
