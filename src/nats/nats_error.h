// How a failed libnats call becomes a pgseed::Error (src/nats only).
#pragma once

#include <nats/nats.h>

#include <string>

namespace pgseed::nats {

// The client's text for `s`, with the detail nats_GetLastError holds when there is one.
std::string status_text(natsStatus s);
// Throws Error for a status other than NATS_OK: kConnection (transient) for timeouts, lost
// connections and a stream without a leader for now; kConfiguration when JetStream is not
// enabled on the servers; kConnection otherwise. `what` starts the message.
void check(natsStatus s, const std::string& what, jsErrCode jerr = jsErrCode(0));

}  // namespace pgseed::nats
