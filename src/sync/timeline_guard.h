// What a follower does when a reconnect finds the source on another timeline: a standby
// was promoted (multi-host conninfo, target_session_attrs=read-write), or an old primary
// runs again after a failover.
//
// The rule, in prose (the code in timeline_guard.cpp is its literal form):
//
// * The store's applied LSN was reached on timeline `was` (the one this run streamed
//   from). The source is now on timeline `now`.
// * now == was: nothing happened.
// * now > was: the new timeline forked from `was` at a switchpoint S (the end of the last
//   WAL record of `was` that the promoted standby had; TIMELINE_HISTORY now lists it).
//   Everything of `was` up to S is also on `now`; nothing of `was` after S is. A store at
//   or before S holds nothing the new primary lacks: streaming continues from the stored
//   LSN (the failover slot's copy on the new primary decodes across the switch). A store
//   beyond S holds changes (or skipped WAL) the new primary never received, and it would
//   skip the new timeline's transactions below the stored LSN: silent divergence, so the
//   follower stops. A `was` that is not in `now`'s history: the source is not a
//   descendant of the server the store followed; stopped too.
// * now < was: an older timeline than the one the store followed (an old primary back
//   after a failover, a split brain): stopped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pg/replication_connection.h"
#include "pgseed/lsn.h"

namespace pgseed {

struct TimelineVerdict {
  bool follow = false;   // streaming may continue from `applied`
  Lsn switchpoint;       // where `was` ended (now > was and `was` in the history)
  std::string message;   // why not (one line, what to do), when !follow
};

// `history`: TIMELINE_HISTORY of `now` (oldest first; empty when now <= was).
TimelineVerdict check_timeline_change(uint32_t was, uint32_t now,
                                      const std::vector<pg::TimelineSwitch>& history, Lsn applied);

}  // namespace pgseed
