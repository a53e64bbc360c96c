// Opening a SQLite store: a command that may only read it (status, dump, verify, a reader;
// must_exist) leaves a file that is not a store yet exactly as it found it. Another process
// may be creating the store that moment: a `pgseed status` that set the empty file up
// (page size, WAL mode, metadata) raced a starting edge, which then stopped with
// "database is locked" (seen once in Stores/FanOut.HubAndEdgesFollowAWriterThroughKills).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "pgseed/error.h"
#include "store/sqlite_store.h"
#include "unit/store_test_support.h"

namespace pgseed {
namespace {

using namespace test_support;

TEST(SqliteOpen, EmptyFileIsNotSetUpByAReader) {
  TempDir tmp;
  const std::string path = tmp.sub("store.db");
  { std::ofstream(path, std::ios::binary); }  // what a creating process has just made
  try {
    open_sqlite_store(path, /*must_exist=*/true);
    ADD_FAILURE() << "an empty file opened as a store";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist (empty file)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(std::filesystem::file_size(path), 0u);  // no page size, no header, no metadata
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));

  // The process that may create it does; then the reader opens it.
  { auto creator = open_sqlite_store(path, /*must_exist=*/false); }
  auto reader = open_sqlite_store(path, /*must_exist=*/true);
  EXPECT_TRUE(reader->tables().empty());
}

}  // namespace
}  // namespace pgseed
