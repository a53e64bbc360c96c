// The one fuzz entry point over the wire decoders, shared by the libFuzzer target
// (fuzz_pgoutput.cpp, built by scripts/fuzz.sh) and the corpus replay test (replay_test.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <variant>

#include "decode/pgoutput.h"
#include "decode/replication_frame.h"
#include "pgseed/error.h"

namespace pgseed::fuzz {

// Reads every byte a decoded message points at, so that a view outside the input shows up
// under AddressSanitizer. Returns a value that depends on them, so the reads stay.
inline size_t touch(const Row& row) {
  size_t sum = 0;
  for (const Datum& d : row) {
    sum += static_cast<size_t>(d.kind);
    for (char c : d.text) sum += static_cast<unsigned char>(c);
  }
  return sum;
}

inline size_t touch(const PgOutputMessage& message) {
  return std::visit(
      [](const auto& m) -> size_t {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, Insert>) return touch(m.new_tuple);
        if constexpr (std::is_same_v<T, Update>) return touch(m.old_tuple) + touch(m.new_tuple);
        if constexpr (std::is_same_v<T, Delete>) return touch(m.old_tuple);
        if constexpr (std::is_same_v<T, Relation>) return m.columns.size() + m.relname.size();
        if constexpr (std::is_same_v<T, LogicalMessage>) return m.content.size();
        return 0;
      },
      message);
}

inline size_t decode_payload(std::span<const uint8_t> data) {
  size_t sum = 0;
  for (bool in_stream : {false, true}) {
    try {
      sum += touch(decode_pgoutput(data, in_stream));
    } catch (const Error&) {
      // Malformed input is expected to be rejected with pgseed::Error; anything else
      // (another exception type, a crash, a sanitizer report) is a finding.
    }
  }
  return sum;
}

// Feeds the input to every decoder: as a pgoutput message (outside and inside a stream),
// as a replication frame, and, when it is an XLogData frame, its payload as a message.
inline int fuzz_one_input(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  volatile size_t sink = decode_payload(bytes);
  try {
    ReplicationFrame frame = decode_replication_frame(bytes);
    if (const auto* x = std::get_if<XLogData>(&frame)) sink = sink + decode_payload(x->payload);
  } catch (const Error&) {
    // As above: rejection by pgseed::Error is the contract.
  }
  if (size >= 8) {
    int64_t t = 0;
    for (size_t i = 0; i < 8; ++i)
      t = static_cast<int64_t>(static_cast<uint64_t>(t) << 8 | data[i]);
    sink = sink + format_pg_timestamp(t).size();
  }
  (void)sink;
  return 0;
}

}  // namespace pgseed::fuzz
