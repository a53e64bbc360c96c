// Failpoints: named places where a test can have the process killed at an exact moment
// (PGSEED_FAILPOINT=name in the environment), instead of racing a kill -9 against a clock.
// The process dies by SIGKILL, as kill -9 would kill it: no destructor, no flush.
#pragma once

#include <signal.h>

#include <cstdlib>
#include <cstring>

namespace pgseed {

inline void failpoint(const char* name) {
  static const char* armed = std::getenv("PGSEED_FAILPOINT");
  if (armed && std::strcmp(armed, name) == 0) raise(SIGKILL);
}

}  // namespace pgseed
