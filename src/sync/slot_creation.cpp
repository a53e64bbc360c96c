#include "sync/slot_creation.h"

#include <chrono>
#include <optional>
#include <thread>

#include "pg/catalog.h"
#include "pg/connection.h"
#include "pgseed/error.h"
#include "sync/initial_copy.h"

namespace pgseed {

namespace {

// The primary keeps what a standby's snapshots need only once it has the standby's
// hot_standby_feedback, which a standby sends when its walreceiver starts and then every
// wal_receiver_status_interval. Before the first one (a standby started moments ago) the
// primary vacuums as if the standby did not exist: a copy under the slot's snapshot could
// miss rows. Through the standby's physical slot on the primary (primary_slot_name), the
// feedback is seen as the slot's xmin.
void wait_for_feedback(pg::Connection& primary, const std::string& standby_slot,
                       const std::string& name, const SlotCreationContext& ctx, const Logger& log) {
  if (standby_slot.empty()) {
    log.warn("the standby has no primary_slot_name: pgseed cannot check that the primary has "
             "its hot_standby_feedback, and the feedback is lost whenever the standby reconnects");
    return;
  }
  for (int i = 0;; ++i) {
    std::optional<bool> held = pg::slot_holds_xmin(primary, standby_slot);
    if (!held) {
      log.warn("--primary has no slot " + standby_slot + " (the standby's primary_slot_name): "
               "cannot check that it has the standby's hot_standby_feedback");
      return;
    }
    if (*held) return;
    if (i == 0)
      log.info("waiting for the primary to receive the standby's hot_standby_feedback (its slot " +
               standby_slot + " holds no xmin yet) before slot " + name + " is created");
    for (int j = 0; j < 10; ++j) {
      if (ctx.stop && ctx.stop->load()) throw CopyInterrupted{};
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (ctx.tick) ctx.tick();
  }
}

}  // namespace

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
  if (standby) {
    if (asking)
      wait_for_feedback(*primary, repl.setting("primary_slot_name"), name, ctx, log);
    else
      log.warn("cannot check that the primary has received this standby's hot_standby_feedback "
               "(pass --primary): a standby started moments ago may not have sent it yet, and a "
               "copy under its snapshot could then miss rows the primary has vacuumed");
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
