// The NATS addresses pgseed takes on its command line: "nats://h1:p1,h2:p2" (--publish) and
// "nats://h1:p1,h2:p2/NAME" (--from: the servers, then the stream). Pure parsing.
#pragma once

#include <string>
#include <vector>

namespace pgseed::nats {

struct NatsAddress {
  std::vector<std::string> servers;  // each "nats://host:port" (user info kept, for the client)
  std::string stream;                // empty when the address names none
  // The servers without user info or passwords, for messages and logs.
  std::string display() const;
};

// Parses a comma-separated server list, each "nats://host[:port]" (the scheme may be left
// off after the first); with `with_stream`, the last server is followed by "/NAME".
// Throws Error(kConfiguration) naming the problem (never the password).
NatsAddress parse_nats_address(const std::string& text, bool with_stream);

// A JetStream stream name pgseed accepts: 1-64 of [A-Za-z0-9_-]. Throws Error(kConfiguration).
void check_stream_name(const std::string& name);

}  // namespace pgseed::nats
