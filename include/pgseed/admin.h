// Operating a replica: status (health check), verify (compare with the source), drop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pgseed/log.h"
#include "pgseed/lsn.h"
#include "pgseed/replica.h"

namespace pgseed {

struct StatusReport {
  ReplicaState state;
  std::vector<std::pair<std::string, uint64_t>> tables;  // name, row count

  // With a source:
  bool source_checked = false;
  bool slot_exists = false;
  bool slot_active = false;
  std::string confirmed_flush_lsn, restart_lsn, wal_status;
  int64_t lag_bytes = -1;       // source WAL position minus the store's applied LSN
  int64_t retained_bytes = -1;  // WAL the slot keeps on the source
  double lag_seconds = -1;      // now minus the last applied commit time, when known

  bool healthy = false;
  std::vector<std::string> warnings;
};

// Reads the store and, with a `source` conninfo, the slot on the source. Unhealthy:
// the copy is unfinished, the slot is missing or invalidated, the publication is gone,
// or the slot retains more than `max_retained_bytes` of WAL.
StatusReport status(const std::string& store, const std::string& source,
                    int64_t max_retained_bytes = int64_t(1) << 30);

struct TableComparison {
  std::string table;
  uint64_t source_rows = 0, store_rows = 0;
  uint64_t missing = 0, extra = 0, different = 0;
  std::vector<std::string> examples;  // a few keys, e.g. "missing (42)"
  bool equal() const { return missing == 0 && extra == 0 && different == 0; }
};

struct VerifyReport {
  Lsn at;  // the store and the source were compared as of this WAL position
  std::vector<TableComparison> tables;
  bool equal() const {
    for (const auto& t : tables)
      if (!t.equal()) return false;
    return true;
  }
};

// Compares every table of the store with the source, exactly, even while the source is
// written: it takes a snapshot of the source at a WAL position P (a temporary slot's
// exported snapshot), catches the store up to exactly P through the store's slot, and
// compares row hashes. Needs the store not to be in use by a running sync.
VerifyReport verify(const std::string& source, const std::string& store, const LogSink& log = {});

// Drops the store's slot and the publication pgseed created; refuses an active slot.
// With `delete_store`, removes the store too.
void drop(const std::string& source, const std::string& store, bool delete_store,
          const LogSink& log = {});

}  // namespace pgseed
