// libFuzzer target for the wire decoders; built and run by scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "fuzz_pgoutput_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pgseed::fuzz::fuzz_one_input(data, size);
}
