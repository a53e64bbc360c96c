#include "nats/nats_error.h"

#include "pgseed/error.h"

namespace pgseed::nats {

std::string status_text(natsStatus s) {
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  std::string out = natsStatus_GetText(s);
  // The detail repeats the status text behind a source location, unless it says more.
  if (detail && *detail && last == s && std::string(detail).find(out) == std::string::npos)
    out += " (" + std::string(detail) + ")";
  return out;
}

void check(natsStatus s, const std::string& what, jsErrCode jerr) {
  if (s == NATS_OK) return;
  std::string text = status_text(s);
  if (jerr != 0) text += " [JetStream error " + std::to_string(int(jerr)) + "]";
  if (s == NATS_NOT_PERMITTED && jerr == 0 && text.find("JetStream") != std::string::npos)
    throw Error(ErrorCategory::kConfiguration, what + ": " + text + " (is JetStream enabled on the servers?)");
  // Everything else may pass: a node restarting, a leader election, a timeout. A caller
  // that follows retries; a one-shot run reports it.
  throw Error(ErrorCategory::kConnection, what + ": " + text, "", /*transient=*/true);
}

}  // namespace pgseed::nats
