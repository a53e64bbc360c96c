#include "sync/timeline_guard.h"

namespace pgseed {

namespace {
const char* const kWhatToDo =
    "; the store cannot follow this source without diverging: copy every table again with "
    "pgseed sync --reseed (or sync into a new store)";
}

TimelineVerdict check_timeline_change(uint32_t was, uint32_t now,
                                      const std::vector<pg::TimelineSwitch>& history, Lsn applied) {
  TimelineVerdict v;
  if (now == was) {
    v.follow = true;
    return v;
  }
  const std::string was_s = std::to_string(was), now_s = std::to_string(now);
  if (now < was) {
    v.message = "the source is on timeline " + now_s + ", older than timeline " + was_s +
                " which the store followed (an old primary running again after a failover?)" +
                kWhatToDo;
    return v;
  }
  for (const auto& sw : history) {
    if (sw.tli != was) continue;
    v.switchpoint = sw.switchpoint;
    if (applied > sw.switchpoint) {
      v.message = "the store is at " + applied.str() + " of timeline " + was_s +
                  ", but the source (now on timeline " + now_s + ") forked from it at " +
                  sw.switchpoint.str() + ": the store holds changes the new primary never " +
                  "received (its standby lagged at the promotion)" + kWhatToDo;
      return v;
    }
    v.follow = true;
    return v;
  }
  v.message = "the source is on timeline " + now_s + ", whose history does not contain timeline " +
              was_s + " which the store followed (not a standby of the server the store came from)" +
              kWhatToDo;
  return v;
}

}  // namespace pgseed
