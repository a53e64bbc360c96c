// StreamReader: reads a JetStream stream in order from a given sequence, in batches, through
// an ephemeral pull consumer (no acknowledgements: the reader keeps its own position, the
// applied LSN of its store). Errors as in jet_stream.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "nats/jet_stream.h"

typedef struct __natsSubscription natsSubscription;

namespace pgseed::nats {

class StreamReader {
 public:
  StreamReader(JetStream& js, const std::string& stream, const std::string& subject, uint64_t start_seq);
  ~StreamReader();
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  // Up to `max` messages in stream order, waiting up to `wait` for the first (none: an
  // empty result).
  std::vector<StoredMessage> fetch(int max, std::chrono::milliseconds wait);

 private:
  natsSubscription* sub_ = nullptr;
  std::string what_;
};

}  // namespace pgseed::nats
