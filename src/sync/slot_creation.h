// Creating a logical slot on the source, primary or hot standby (PostgreSQL 16+).
//
// On a standby, CREATE_REPLICATION_SLOT returns only once the standby has replayed a
// running-xacts record of the primary that lets the slot's snapshot become consistent:
// the primary logs one about every 15 s while it is written (bgwriter), at checkpoints,
// or at once on `SELECT pg_log_standby_snapshot()`; an idle primary may log none for
// a long time. So on a standby the wait is said on the log, a stop cancels it, and with
// a primary conninfo pgseed asks the primary for the record itself.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "pg/replication_connection.h"
#include "sync/logger.h"

namespace pgseed {

struct SlotCreationContext {
  std::string primary = {};                 // the standby's primary (conninfo), or empty
  const std::atomic<bool>* stop = nullptr;  // raised: the creation is cancelled
  // Called about once a second while the creation waits (e.g. to answer the keepalives
  // of the caller's replication stream).
  std::function<void()> tick = {};
};

// Creates slot `name` on `repl`'s server. On a standby: logs that it waits for the
// primary's running-xacts record (unless it has a primary to ask), and with `primary`
// calls pg_log_standby_snapshot() there right after the command is sent and then about
// once a second until the slot exists (a primary that refuses it gets a warning, and the
// wait goes on). Throws CopyInterrupted when `stop` was raised during the wait: no slot is
// left then. Other failures throw Error as ReplicationConnection::create_slot does.
pg::CreatedSlot create_source_slot(pg::ReplicationConnection& repl, const std::string& name,
                                   const pg::SlotOptions& options, const SlotCreationContext& ctx,
                                   const Logger& log);

}  // namespace pgseed
