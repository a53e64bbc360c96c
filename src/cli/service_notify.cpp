#include "cli/service_notify.h"

#include <cstdlib>

#ifdef PGSEED_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "cli/progress_format.h"

namespace pgseed::cli {

ServiceNotifier::ServiceNotifier() {
#ifdef PGSEED_HAVE_SYSTEMD
  const char* socket = std::getenv("NOTIFY_SOCKET");
  active_ = socket != nullptr && *socket != '\0';
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is this process.
  watchdog_ = active_ && sd_watchdog_enabled(/*unset_environment=*/0, &usec) > 0;
#endif
}

void ServiceNotifier::send(const std::string& state) {
#ifdef PGSEED_HAVE_SYSTEMD
  // Best effort: a notification that cannot be sent changes nothing for the replica.
  (void)sd_notify(/*unset_environment=*/0, state.c_str());
#else
  (void)state;
#endif
}

void ServiceNotifier::progress(const Progress& p) {
  if (!active_) return;
  std::string state;
  std::string status = service_status(p);
  if (status != last_status_) {
    state += "STATUS=" + status + "\n";
    last_status_ = status;
  }
  // Streaming runs: the copy is over (or there was none); a table copied during the
  // stream (added to the publication, resynced) reports kCopy but is not a start-up.
  if (!ready_ && p.phase == Progress::Phase::kStream) {
    state += "READY=1\n";
    ready_ = true;
  }
  // Every report is the apply loop (or the copy's writer) getting round: the watchdog
  // hears from it about once a second while it works, and stops hearing when it hangs.
  if (watchdog_) state += "WATCHDOG=1\n";
  if (!state.empty()) send(state);
}

void ServiceNotifier::stopping() {
  if (!active_) return;
  send("STOPPING=1\nSTATUS=stopping: finishing the transaction in hand\n");
}

}  // namespace pgseed::cli
