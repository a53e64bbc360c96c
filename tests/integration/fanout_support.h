// Helpers of the fan-out tests (test_fanout*.cpp): where a store is, read as `pgseed status`
// reads it while a sync (hub or edge) runs, and the hub's log.
#pragma once

#include <string>

#include "harness.h"
#include "stream_support.h"

namespace pgseed::test {

// The store's applied LSN ("" while the store does not exist yet: an edge restores its
// snapshot first).
inline std::string applied_lsn(const std::string& store) {
  RunResult r = run_pgseed({"status", "--store", store, "--format", "json"});
  return r.exit_code == 0 ? json_field(r.out, "applied_lsn") : "";
}

// Waits until `store`'s applied LSN is past `lsn` (it holds a transaction that committed
// after it).
inline bool wait_applied_past(const std::string& store, const std::string& lsn, double seconds = 60) {
  uint64_t want = lsn_value(lsn);
  return wait_until([&] { return lsn_value(applied_lsn(store)) > want; }, seconds, 50);
}

// Waits until the hub whose log is `hub_log` has published a whole snapshot.
inline bool wait_hub_snapshot(const std::string& hub_log, double seconds = 60) {
  return wait_until([&] { return read_text(hub_log).find("published a snapshot") != std::string::npos; }, seconds, 50);
}

}  // namespace pgseed::test
