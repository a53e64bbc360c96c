#include "nats/stream_reader.h"

#include <nats/nats.h>

#include "nats/nats_error.h"

namespace pgseed::nats {

StreamReader::StreamReader(JetStream& js, const std::string& stream, const std::string& subject,
                           uint64_t start_seq)
    : what_("reading NATS stream " + stream + " at " + js.servers()) {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Config.DeliverPolicy = start_seq > 1 ? js_DeliverByStartSequence : js_DeliverAll;
  so.Config.OptStartSeq = start_seq > 1 ? start_seq : 0;
  so.Config.AckPolicy = js_AckNone;
  jsErrCode jerr = jsErrCode(0);
  check(js_PullSubscribe(&sub_, js.context(), subject.c_str(), nullptr, nullptr, &so, &jerr), what_, jerr);
}

StreamReader::~StreamReader() {
  if (!sub_) return;
  natsSubscription_Unsubscribe(sub_);  // removes the ephemeral consumer
  natsSubscription_Destroy(sub_);
}

std::vector<StoredMessage> StreamReader::fetch(int max, std::chrono::milliseconds wait) {
  natsMsgList list{nullptr, 0};
  jsErrCode jerr = jsErrCode(0);
  natsStatus s = natsSubscription_Fetch(&list, sub_, max, wait.count(), &jerr);
  std::vector<StoredMessage> out;
  if (s == NATS_TIMEOUT) return out;
  check(s, what_, jerr);
  for (int i = 0; i < list.Count; ++i) {
    natsMsg* m = list.Msgs[i];
    StoredMessage sm;
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
      sm.seq = meta->Sequence.Stream;
      jsMsgMetaData_Destroy(meta);
    }
    sm.data.assign(natsMsg_GetData(m), size_t(natsMsg_GetDataLength(m)));
    out.push_back(std::move(sm));
  }
  natsMsgList_Destroy(&list);
  return out;
}

}  // namespace pgseed::nats
