#include "nats/nats_url.h"

#include "pgseed/error.h"

namespace pgseed::nats {

namespace {
[[noreturn]] void bad(const std::string& what) {
  throw Error(ErrorCategory::kConfiguration, "NATS address: " + what);
}

// "user:pass@host:port" -> "host:port"
std::string without_user_info(const std::string& hostport) {
  auto at = hostport.rfind('@');
  return at == std::string::npos ? hostport : hostport.substr(at + 1);
}
}  // namespace

std::string NatsAddress::display() const {
  std::string out;
  for (const auto& s : servers) {
    std::string hp = s.substr(s.find("://") + 3);
    out += (out.empty() ? "nats://" : ",") + without_user_info(hp);
  }
  return out;
}

void check_stream_name(const std::string& name) {
  if (name.empty() || name.size() > 64) bad("a stream name of 1 to 64 characters is needed");
  for (char c : name)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      bad("stream name " + name + " may only hold letters, digits, '_' and '-'");
}

NatsAddress parse_nats_address(const std::string& text, bool with_stream) {
  constexpr std::string_view kScheme = "nats://";
  if (text.rfind(kScheme, 0) != 0) bad("it must start with nats:// (nats://host:port,host:port" +
                                       std::string(with_stream ? "/STREAM)" : ")"));
  std::string rest = text.substr(kScheme.size());
  NatsAddress a;
  if (with_stream) {
    auto slash = rest.rfind('/');
    if (slash == std::string::npos) bad("no stream named (nats://host:port,.../STREAM)");
    a.stream = rest.substr(slash + 1);
    rest.resize(slash);
    check_stream_name(a.stream);
  }
  size_t start = 0;
  for (;;) {
    size_t comma = rest.find(',', start);
    std::string item = rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.rfind(kScheme, 0) == 0) item = item.substr(kScheme.size());
    std::string hp = without_user_info(item);
    if (hp.empty() || hp.find('/') != std::string::npos || hp.find(' ') != std::string::npos)
      bad("a server must be host or host:port, got '" + hp + "'");
    auto colon = hp.rfind(':');
    if (colon != std::string::npos && hp.find(']') == std::string::npos) {
      std::string port = hp.substr(colon + 1);
      bool digits = !port.empty() && port.size() <= 5 &&
                    port.find_first_not_of("0123456789") == std::string::npos;
      if (!digits || std::stoi(port) == 0 || std::stoi(port) > 65535) bad("bad port in '" + hp + "'");
    }
    a.servers.push_back(std::string(kScheme) + item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return a;
}

}  // namespace pgseed::nats
