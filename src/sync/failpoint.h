// Failpoints: named places where a test acts at an exact moment instead of racing a clock.
//   - Other processes: PGSEED_FAILPOINT=name (or name@N: at the Nth pass) in the
//     environment kills the process there by SIGKILL, as kill -9 would: no destructor, no
//     flush. PGSEED_FAILPOINT=stop:name[@N] stops it there by SIGSTOP instead: the test
//     waits for that (waitpid with WUNTRACED), looks at the store in that exact state, and
//     lets the process go on with SIGCONT (or kills it).
//   - This process (the library's tests): set_failpoint_handler(f) has f(name) called at
//     every pass through every failpoint, on the thread that passes it (e.g. to call
//     Sync::stop() right after the first batch of a copy is stored).
#pragma once

#include <signal.h>

#include <cstdlib>
#include <cstring>
#include <functional>

namespace pgseed {

// Set before the code under test starts its threads, cleared after they ended (it is not
// synchronised otherwise).
inline std::function<void(const char*)>& failpoint_handler() {
  static std::function<void(const char*)> handler;
  return handler;
}
inline void set_failpoint_handler(std::function<void(const char*)> f) { failpoint_handler() = std::move(f); }

inline void failpoint(const char* name) {
  if (const auto& h = failpoint_handler()) h(name);
  static const char* env = std::getenv("PGSEED_FAILPOINT");
  if (!env) return;
  static const bool stop = std::strncmp(env, "stop:", 5) == 0;
  static const char* armed = stop ? env + 5 : env;
  static const char* at = std::strchr(armed, '@');
  static const size_t len = at ? size_t(at - armed) : std::strlen(armed);
  static const long nth = at ? std::strtol(at + 1, nullptr, 10) : 1;
  static long passes = 0;
  if (std::strlen(name) == len && std::strncmp(armed, name, len) == 0 && ++passes == nth)
    raise(stop ? SIGSTOP : SIGKILL);  // once: a stopped process goes on past it
}

}  // namespace pgseed
