// The public enums' names: what the CLI prints for a phase (`pgseed status`, its JSON and
// check formats, which scripts and monitoring match), and a change kind's name.
#include <gtest/gtest.h>

#include <string>

#include "api/replica_state.h"
#include "pgseed/replica.h"
#include "pgseed/sync.h"

namespace pgseed {
namespace {

TEST(PublicNames, ReplicaPhaseNamesAreTheOnesTheCliPrints) {
  EXPECT_STREQ(to_string(ReplicaState::Phase::kEmpty), "empty");
  EXPECT_STREQ(to_string(ReplicaState::Phase::kCopying), "copying");
  EXPECT_STREQ(to_string(ReplicaState::Phase::kStreaming), "streaming");
}

TEST(PublicNames, StorePhaseMapsToTheReplicaPhase) {
  StoreState s;
  EXPECT_EQ(to_replica_state(s).phase, ReplicaState::Phase::kEmpty);
  s.phase = StoreState::Phase::kCopying;
  EXPECT_EQ(to_replica_state(s).phase, ReplicaState::Phase::kCopying);
  s.phase = StoreState::Phase::kStreaming;
  EXPECT_EQ(to_replica_state(s).phase, ReplicaState::Phase::kStreaming);
  // The same words as the store's own (a SQLite store's _pgseed_state holds them).
  for (auto p : {StoreState::Phase::kEmpty, StoreState::Phase::kCopying, StoreState::Phase::kStreaming}) {
    s.phase = p;
    EXPECT_STREQ(to_string(to_replica_state(s).phase), phase_name(p));
  }
}

TEST(PublicNames, ChangeKindNames) {
  EXPECT_STREQ(to_string(ChangeKind::kInsert), "insert");
  EXPECT_STREQ(to_string(ChangeKind::kUpdate), "update");
  EXPECT_STREQ(to_string(ChangeKind::kDelete), "delete");
  EXPECT_STREQ(to_string(ChangeKind::kTruncate), "truncate");
}

}  // namespace
}  // namespace pgseed
