// JetStream: one connection to a NATS cluster and the JetStream calls pgseed makes on it
// (streams, publish with acknowledgement, reads by sequence). With stream_reader.cpp, the
// only code that calls the NATS C client (libnats), as src/pg is for libpq.
//
// Errors: Error(kConnection, transient) when the cluster cannot be reached or does not
// answer in time (a stream's leader being elected again answers nothing for seconds: worth a
// retry); Error(kConfiguration) when the servers have no JetStream; Error(kSourceState) for
// a stream that is not there. Thread-safety: one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nats/nats_url.h"

typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;

namespace pgseed::nats {

struct StoredMessage {
  uint64_t seq = 0;
  int64_t time_ns = 0;  // when the stream stored it (UTC, ns since the epoch; 0: unknown)
  std::string data;
};

struct StreamBounds {
  uint64_t first_seq = 0;  // 0 with last_seq 0: the stream has no message
  uint64_t last_seq = 0;
  uint64_t messages = 0;
};

class JetStream {
 public:
  // Connects to any of `address.servers` (the client tries them in order, reconnects
  // among them later). `client_name` shows in the servers' connection lists.
  static JetStream connect(const NatsAddress& address, const std::string& client_name);
  JetStream(JetStream&& other) noexcept;
  JetStream& operator=(JetStream&&) = delete;
  JetStream(const JetStream&) = delete;
  ~JetStream();

  // The largest message the servers take (max_payload, 1 MB by default).
  size_t max_payload() const;
  const std::string& servers() const { return display_; }

  // Creates `stream` (file storage, limits retention, `replicas` copies, capturing
  // `subjects`: a wildcard allowed) unless it exists; an existing one is left as it is.
  void ensure_stream(const std::string& stream, const std::string& subjects, int replicas);
  bool stream_exists(const std::string& stream);
  StreamBounds bounds(const std::string& stream);

  // Publishes and waits for the cluster's acknowledgement (the message is stored on a
  // quorum of the stream's replicas then). `msg_id` is its Nats-Msg-Id: a message with the
  // same id within the stream's duplicate window is stored once (empty: no id). Returns its sequence (the
  // first one's for a duplicate).
  uint64_t publish(const std::string& subject, std::string_view data, const std::string& msg_id);

  // The newest message of `subject` in `stream`, or none.
  std::optional<StoredMessage> last_message(const std::string& stream, const std::string& subject);
  // The message at `seq`, or none (deleted, or beyond the stream's end).
  std::optional<StoredMessage> message(const std::string& stream, uint64_t seq);

  // The name of the server leading `stream`'s replicas ("" when not replicated or unknown).
  std::string leader(const std::string& stream);
  // Removes every message of `stream` below sequence `seq` (JetStream's purge).
  void purge_before(const std::string& stream, uint64_t seq);

  jsCtx* context() const { return js_; }

 private:
  JetStream(natsConnection* nc, jsCtx* js, std::string display)
      : nc_(nc), js_(js), display_(std::move(display)) {}
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  std::string display_;
};

}  // namespace pgseed::nats
