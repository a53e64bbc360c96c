#include "nats/jet_stream.h"

#include <nats/nats.h>

#include <vector>

#include "nats/nats_error.h"
#include "pgseed/error.h"

namespace pgseed::nats {

namespace {
constexpr int64_t kConnectTimeoutMs = 2000;
constexpr int64_t kRequestWaitMs = 5000;  // JetStream API calls and publish acknowledgements
// How long a republished message (same Nats-Msg-Id) is recognised as a duplicate: longer
// than a hub takes to restart after a crash.
constexpr int64_t kDuplicateWindowNs = int64_t(10) * 60 * 1000 * 1000 * 1000;

std::optional<StoredMessage> take(natsMsg* m) {
  StoredMessage out;
  out.seq = natsMsg_GetSequence(m);
  out.time_ns = natsMsg_GetTime(m);
  out.data.assign(natsMsg_GetData(m), size_t(natsMsg_GetDataLength(m)));
  natsMsg_Destroy(m);
  return out;
}
}  // namespace

JetStream JetStream::connect(const NatsAddress& address, const std::string& client_name) {
  natsOptions* opts = nullptr;
  check(natsOptions_Create(&opts), "NATS options");
  struct OptsGuard {
    natsOptions* o;
    ~OptsGuard() { natsOptions_Destroy(o); }
  } guard{opts};
  std::vector<const char*> urls;
  for (const auto& s : address.servers) urls.push_back(s.c_str());
  check(natsOptions_SetServers(opts, urls.data(), int(urls.size())), "NATS servers");
  check(natsOptions_SetNoRandomize(opts, true), "NATS options");
  check(natsOptions_SetTimeout(opts, kConnectTimeoutMs), "NATS options");
  check(natsOptions_SetName(opts, client_name.c_str()), "NATS options");
  // Reconnect for as long as it takes (a cluster node restarting); the calls meanwhile
  // fail and are retried by the caller.
  check(natsOptions_SetMaxReconnect(opts, -1), "NATS options");
  natsConnection* nc = nullptr;
  natsStatus s = natsConnection_Connect(&nc, opts);
  if (s != NATS_OK)
    throw Error(ErrorCategory::kConnection,
                "cannot connect to NATS at " + address.display() + ": " + status_text(s), "",
                /*transient=*/true);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = kRequestWaitMs;
  jsCtx* js = nullptr;
  s = natsConnection_JetStream(&js, nc, &jo);
  if (s != NATS_OK) {
    natsConnection_Destroy(nc);
    throw Error(ErrorCategory::kConnection, "NATS at " + address.display() + ": " + status_text(s));
  }
  return JetStream(nc, js, address.display());
}

JetStream::JetStream(JetStream&& o) noexcept : nc_(o.nc_), js_(o.js_), display_(std::move(o.display_)) {
  o.nc_ = nullptr;
  o.js_ = nullptr;
}

JetStream::~JetStream() {
  if (js_) jsCtx_Destroy(js_);
  if (nc_) natsConnection_Destroy(nc_);
}

size_t JetStream::max_payload() const { return size_t(natsConnection_GetMaxPayload(nc_)); }

bool JetStream::stream_exists(const std::string& stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = jsErrCode(0);
  natsStatus s = js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, &jerr);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    return true;
  }
  if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) return false;
  check(s, "NATS stream " + stream + " at " + display_, jerr);
  return false;
}

void JetStream::ensure_stream(const std::string& stream, const std::string& subjects, int replicas) {
  if (stream_exists(stream)) return;
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subj[1] = {subjects.c_str()};
  cfg.Name = stream.c_str();
  cfg.Subjects = subj;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = replicas;
  cfg.Duplicates = kDuplicateWindowNs;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = jsErrCode(0);
  natsStatus s = js_AddStream(&si, js_, &cfg, nullptr, &jerr);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    return;
  }
  if (jerr == JSStreamNameExistErr) return;  // made meanwhile by another hub run
  check(s, "creating NATS stream " + stream + " at " + display_, jerr);
}

StreamBounds JetStream::bounds(const std::string& stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = jsErrCode(0);
  natsStatus s = js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
    throw Error(ErrorCategory::kSourceState,
                "NATS stream " + stream + " does not exist at " + display_ +
                    " (is a hub publishing to it: pgseed sync --publish ... --stream " + stream + "?)",
                "", /*transient=*/true);  // a following edge waits for its hub
  check(s, "NATS stream " + stream + " at " + display_, jerr);
  StreamBounds b{si->State.FirstSeq, si->State.LastSeq, si->State.Msgs};
  jsStreamInfo_Destroy(si);
  if (b.messages == 0) b.first_seq = b.last_seq = 0;
  return b;
}

uint64_t JetStream::publish(const std::string& subject, std::string_view data, const std::string& msg_id) {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = msg_id.empty() ? nullptr : msg_id.c_str();
  po.MaxWait = kRequestWaitMs;
  jsPubAck* ack = nullptr;
  jsErrCode jerr = jsErrCode(0);
  natsStatus s = js_Publish(&ack, js_, subject.c_str(), data.data(), int(data.size()), &po, &jerr);
  check(s, "publishing to NATS at " + display_, jerr);
  uint64_t seq = ack->Sequence;
  jsPubAck_Destroy(ack);
  return seq;
}

std::optional<StoredMessage> JetStream::last_message(const std::string& stream, const std::string& subject) {
  natsMsg* m = nullptr;
  jsErrCode jerr = jsErrCode(0);
  natsStatus s = js_GetLastMsg(&m, js_, stream.c_str(), subject.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) return std::nullopt;
  check(s, "reading NATS stream " + stream + " at " + display_, jerr);
  return take(m);
}

std::optional<StoredMessage> JetStream::message(const std::string& stream, uint64_t seq) {
  natsMsg* m = nullptr;
  jsErrCode jerr = jsErrCode(0);
  natsStatus s = js_GetMsg(&m, js_, stream.c_str(), seq, nullptr, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) return std::nullopt;
  check(s, "reading NATS stream " + stream + " at " + display_, jerr);
  return take(m);
}

std::string JetStream::leader(const std::string& stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = jsErrCode(0);
  check(js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, &jerr), "NATS stream " + stream + " at " + display_, jerr);
  std::string out = si->Cluster && si->Cluster->Leader ? si->Cluster->Leader : "";
  jsStreamInfo_Destroy(si);
  return out;
}

void JetStream::purge_before(const std::string& stream, uint64_t seq) {
  jsOptions o;
  jsOptions_Init(&o);
  o.Wait = kRequestWaitMs;
  o.Stream.Purge.Sequence = seq;
  jsErrCode jerr = jsErrCode(0);
  check(js_PurgeStream(js_, stream.c_str(), &o, &jerr), "purging NATS stream " + stream + " at " + display_, jerr);
}

}  // namespace pgseed::nats
