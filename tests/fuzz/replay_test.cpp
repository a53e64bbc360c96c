// Replays every file of the fuzz corpus through the fuzz entry point, under the normal
// compiler and test run: a crash the fuzzer found and saved stays covered without clang.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "fuzz_pgoutput_entry.h"

namespace pgseed {
namespace {

TEST(FuzzCorpusReplay, EveryFileDecodesOrThrowsPgseedError) {
  std::filesystem::path dir(PGSEED_FUZZ_CORPUS_DIR);
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    ASSERT_TRUE(in) << entry.path();
    std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().filename().string());
    EXPECT_EQ(fuzz::fuzz_one_input(data.data(), data.size()), 0);
    ++files;
  }
  EXPECT_GT(files, 50u);
}

}  // namespace
}  // namespace pgseed
