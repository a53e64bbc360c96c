#include "model/uuid_text.h"

#include "common/bytes.h"

namespace pgseed {

bool parse_uuid(std::string_view t, std::string& out) {
  std::string_view s = t;
  if (s.size() >= 2 && s.front() == '{' && s.back() == '}') s = s.substr(1, s.size() - 2);
  size_t i = 0;
  std::string bytes;
  for (int n = 0; n < 16; ++n) {
    if (n > 0 && n % 2 == 0 && i < s.size() && s[i] == '-') ++i;
    int hi = i < s.size() ? hex_value(s[i]) : -1;
    int lo = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
    if (hi < 0 || lo < 0) return false;
    bytes.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  if (i != s.size()) return false;
  out += bytes;
  return true;
}

std::string uuid_text(std::string_view bytes) {
  std::string s;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    auto b = static_cast<uint8_t>(bytes[i]);
    s.push_back(kHexDigits[b >> 4]);
    s.push_back(kHexDigits[b & 15]);
  }
  return s;
}

}  // namespace pgseed
