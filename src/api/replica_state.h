// The store's state as the public API shows it.
#pragma once

#include <string>

#include "pgseed/error.h"
#include "pgseed/replica.h"
#include "store/store.h"

namespace pgseed {

inline ReplicaState::Phase to_replica_phase(StoreState::Phase p) {
  switch (p) {
    case StoreState::Phase::kEmpty: return ReplicaState::Phase::kEmpty;
    case StoreState::Phase::kCopying: return ReplicaState::Phase::kCopying;
    case StoreState::Phase::kStreaming: return ReplicaState::Phase::kStreaming;
  }
  throw Error(ErrorCategory::kInternal, "unknown store phase " + std::to_string(int(p)));
}

inline ReplicaState to_replica_state(const StoreState& s) {
  ReplicaState r;
  r.phase = to_replica_phase(s.phase);
  r.source_system_id = s.system_id;
  r.source_database = s.database;
  r.slot = s.slot;
  r.publication = s.publication;
  r.created_publication = s.created_publication;
  r.consistent_point = s.consistent_point;
  r.applied_lsn = s.applied_lsn;
  r.last_commit_time = s.last_commit_time;
  r.timeline = s.timeline;
  return r;
}

}  // namespace pgseed
