// systemd's service notification (sd_notify) for `pgseed sync` run as a Type=notify unit
// (scripts/pgseed@.service). Fed from the sync's progress callback, so that the library
// knows nothing of systemd: READY=1 once streaming runs (the initial copy, if any, is
// done), STATUS= with the phase, position and lag, WATCHDOG=1 on every progress report
// when the unit sets WatchdogSec=, STOPPING=1 when a signal asks the sync to stop.
// Without NOTIFY_SOCKET in the environment, or in a build without libsystemd
// (PGSEED_HAVE_SYSTEMD undefined), every call does nothing.
#pragma once

#include <string>

#include "pgseed/sync.h"

namespace pgseed::cli {

class ServiceNotifier {
 public:
  // Reads NOTIFY_SOCKET and the watchdog settings (WATCHDOG_USEC, WATCHDOG_PID).
  ServiceNotifier();

  // True when notifications are sent (NOTIFY_SOCKET set and libsystemd built in).
  bool active() const { return active_; }

  // Called from the progress callback (the sync's thread; about once a second).
  void progress(const Progress& p);
  // A clean stop is under way (from the signal watcher).
  void stopping();

 private:
  void send(const std::string& state);

  bool active_ = false;
  bool watchdog_ = false;
  bool ready_ = false;
  std::string last_status_;
};

}  // namespace pgseed::cli
