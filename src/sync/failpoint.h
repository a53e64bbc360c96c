// Failpoints: named places where a test can have the process killed at an exact moment
// (PGSEED_FAILPOINT=name in the environment), instead of racing a kill -9 against a clock.
// The process dies by SIGKILL, as kill -9 would kill it: no destructor, no flush.
#pragma once

#include <signal.h>

#include <cstdlib>
#include <cstring>

namespace pgseed {

// PGSEED_FAILPOINT=name kills at the first pass through `name`; name@N at the Nth.
inline void failpoint(const char* name) {
  static const char* armed = std::getenv("PGSEED_FAILPOINT");
  if (!armed) return;
  static const char* at = std::strchr(armed, '@');
  static const size_t len = at ? size_t(at - armed) : std::strlen(armed);
  static const long nth = at ? std::strtol(at + 1, nullptr, 10) : 1;
  static long passes = 0;
  if (std::strlen(name) == len && std::strncmp(armed, name, len) == 0 && ++passes >= nth)
    raise(SIGKILL);
}

}  // namespace pgseed
