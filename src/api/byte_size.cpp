#include <cctype>
#include <limits>
#include <string>

#include "pgseed/error.h"
#include "pgseed/sync.h"

namespace pgseed {

uint64_t parse_byte_size(const std::string& text, const std::string& what) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCategory::kConfiguration,
                 "invalid " + what + " '" + text + "': " + why +
                     " (expected bytes, or a number with kB, MB, GB or TB, e.g. 64MB)");
  };
  size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  if (i == text.size() || !std::isdigit(static_cast<unsigned char>(text[i])))
    throw bad("not a whole number of bytes");
  uint64_t n = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    unsigned d = unsigned(text[i] - '0');
    if (n > (std::numeric_limits<uint64_t>::max() - d) / 10) throw bad("too large");
    n = n * 10 + d;
  }
  while (i < text.size() && text[i] == ' ') ++i;
  std::string unit;
  for (; i < text.size(); ++i) unit += char(std::tolower(static_cast<unsigned char>(text[i])));
  while (!unit.empty() && unit.back() == ' ') unit.pop_back();
  int shift = 0;
  if (unit.empty() || unit == "b" || unit == "bytes") shift = 0;
  else if (unit == "kb") shift = 10;
  else if (unit == "mb") shift = 20;
  else if (unit == "gb") shift = 30;
  else if (unit == "tb") shift = 40;
  else throw bad("unknown unit '" + unit + "'");
  if (shift > 0 && n > (std::numeric_limits<uint64_t>::max() >> shift)) throw bad("too large");
  return n << shift;
}

}  // namespace pgseed
