// Wire bytes captured from a real server (tests/data/pgoutput/*.hex, see capture.sql): one
// message per line in hex, '#' lines are comments.
#pragma once

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "unit/wire_buf.h"

namespace pgseed::test_support {

inline Bytes from_hex(const std::string& hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) throw std::runtime_error("odd hex length");
  Bytes out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) throw std::runtime_error("bad hex digit");
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

// The messages of tests/data/pgoutput/NAME, in order.
inline std::vector<Bytes> load_hex(const std::string& name) {
  std::string path = std::string(PGSEED_TEST_DATA_DIR) + "/pgoutput/" + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<Bytes> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    out.push_back(from_hex(line));
  }
  return out;
}

}  // namespace pgseed::test_support
