#include "sync/slot_creation.h"

#include <optional>

#include "pg/connection.h"
#include "pgseed/error.h"
#include "sync/initial_copy.h"

namespace pgseed {

pg::CreatedSlot create_source_slot(pg::ReplicationConnection& repl, const std::string& name,
                                   const pg::SlotOptions& options, const SlotCreationContext& ctx,
                                   const Logger& log) {
  const bool standby = repl.in_recovery();
  // Without hot_standby_feedback the primary knows nothing of what the standby's slot and
  // the copy's snapshot need: it may vacuum away rows still visible to that snapshot (the
  // copy would silently miss them) and catalog rows the slot needs (PostgreSQL then
  // invalidates the slot). A replica that cannot be trusted is not begun.
  if (standby && repl.setting("hot_standby_feedback") != "on")
    throw Error(ErrorCategory::kConfiguration,
                "the source is a hot standby with hot_standby_feedback = off: the primary may "
                "remove rows that the copy's snapshot and slot " + name + " still need; set "
                "hot_standby_feedback = on on the standby (with primary_slot_name, so that it "
                "holds across reconnections) and reload it");
  std::optional<pg::Connection> primary;
  bool asking = false;  // the primary takes pg_log_standby_snapshot()
  if (standby && !ctx.primary.empty()) {
    try {
      primary.emplace(pg::Connection::open(ctx.primary));
      asking = true;
    } catch (const Error& e) {
      log.warn(std::string("--primary: ") + e.what());
    }
  }
  if (standby && !asking)
    log.info("the source is a hot standby: waiting for the primary to log a running-xacts "
             "record before slot " + name + " can be created (a write on the primary makes "
             "one within about 15 s; or pass --primary)");

  pg::SlotCreationWait wait;
  wait.stop = ctx.stop;
  if (standby && (asking || ctx.tick))
    wait.while_waiting = [&] {
      if (ctx.tick) ctx.tick();
      if (!asking) return;
      try {
        primary->exec("SELECT pg_log_standby_snapshot()", "asking the primary for a running-xacts record");
      } catch (const Error& e) {
        asking = false;
        log.warn(std::string("--primary: ") + e.what() + "; waiting for the primary to log a "
                 "running-xacts record by itself (a write on the primary makes one within "
                 "about 15 s)");
      }
    };
  else if (ctx.tick)
    wait.while_waiting = ctx.tick;
  try {
    return repl.create_slot(name, options, wait);
  } catch (const Error& e) {
    if (e.sqlstate() == "57014" && ctx.stop && ctx.stop->load()) throw CopyInterrupted{};
    throw;
  }
}

}  // namespace pgseed
