// Where a hub publishes in NATS JetStream, given the stream NAME of --stream / --from:
// the change stream NAME (subject pgseed.NAME.txn) and the snapshot stream NAME-snapshots
// (subjects pgseed.NAME.snap.data and pgseed.NAME.snap.end).
#pragma once

#include <string>

namespace pgseed::fanout {

struct StreamNames {
  std::string changes;          // NAME
  std::string change_subject;   // pgseed.NAME.txn
  std::string snapshots;        // NAME-snapshots
  std::string snapshot_subjects;  // pgseed.NAME.snap.>
  std::string snapshot_data;    // pgseed.NAME.snap.data: headers and chunks
  std::string snapshot_end;     // pgseed.NAME.snap.end: one per whole snapshot

  static StreamNames of(const std::string& name) {
    std::string p = "pgseed." + name;
    return {name, p + ".txn", name + "-snapshots", p + ".snap.>", p + ".snap.data", p + ".snap.end"};
  }
};

}  // namespace pgseed::fanout
