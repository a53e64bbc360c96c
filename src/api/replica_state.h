// The store's state as the public API shows it.
#pragma once

#include "pgseed/replica.h"
#include "store/store.h"

namespace pgseed {

inline ReplicaState to_replica_state(const StoreState& s) {
  ReplicaState r;
  r.phase = phase_name(s.phase);
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
