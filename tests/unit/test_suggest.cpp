// "Did you mean": the distance, the choice of a candidate, and finding the mistyped word
// in a command line (the names as CLI11 would list them for pgseed).
#include <gtest/gtest.h>

#include "cli/suggest.h"

namespace pgseed::cli {
namespace {

TEST(Suggest, EditDistance) {
  EXPECT_EQ(edit_distance("sync", "sync"), 0u);
  EXPECT_EQ(edit_distance("sycn", "sync"), 1u);  // a swap is one edit
  EXPECT_EQ(edit_distance("folow", "follow"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(Suggest, Closest) {
  std::vector<std::string> commands = {"sync", "resync", "dump", "status", "verify", "drop"};
  EXPECT_EQ(closest("sycn", commands), "sync");
  EXPECT_EQ(closest("stats", commands), "status");
  EXPECT_EQ(closest("verfy", commands), "verify");
  EXPECT_EQ(closest("dunp", commands), "dump");
  EXPECT_EQ(closest("frobnicate", commands), "");
  EXPECT_EQ(closest("ver", commands), "verify");  // the only one it begins
  EXPECT_EQ(closest("dr", commands), "");          // too short to guess
  std::vector<std::string> options = {"--store", "--source", "--follow", "--tables", "-h", "-j"};
  EXPECT_EQ(closest("--folow", options), "--follow");
  EXPECT_EQ(closest("--sorce", options), "--source");
  EXPECT_EQ(closest("--stor", options), "--store");
  EXPECT_EQ(closest("-x", options), "");
  EXPECT_EQ(closest("--s", options), "");  // a prefix of several
}

UsageNames pgseed_names() {
  UsageNames u;
  u.commands = {"sync", "status"};
  u.global.options = {"-h", "--help", "-q", "--quiet", "--log-format", "-W", "--password"};
  u.global.with_value = {"--log-format"};
  u.by_command["sync"].options = {"-h", "--help", "--source", "--store", "--tables", "--follow", "-j", "--jobs"};
  u.by_command["sync"].with_value = {"--source", "--store", "--tables", "-j", "--jobs"};
  u.by_command["status"].options = {"-h", "--help", "--store", "--format", "--check"};
  u.by_command["status"].with_value = {"--store", "--format"};
  return u;
}

TEST(Suggest, FindsTheMistypedWord) {
  UsageNames u = pgseed_names();
  auto w = find_unknown_word(u, {"sycn", "--store", "x"});
  ASSERT_TRUE(w);
  EXPECT_TRUE(w->is_command);
  EXPECT_EQ(describe(*w), "unknown command 'sycn'; did you mean 'sync'?");

  w = find_unknown_word(u, {"sync", "--store", "x", "--folow"});
  ASSERT_TRUE(w);
  EXPECT_EQ(describe(*w), "unknown option '--folow' for sync; did you mean '--follow'?");

  // Values are skipped, also when they look like words or options; '=' values too.
  EXPECT_FALSE(find_unknown_word(u, {"sync", "--store", "sycn", "--tables=a,b", "-j", "4", "--follow"}));
  EXPECT_FALSE(find_unknown_word(u, {"-q", "--log-format", "json", "sync", "-j4", "-qW"}));
  // Global options after the subcommand, as CLI11's fallthrough takes them.
  EXPECT_FALSE(find_unknown_word(u, {"status", "--store", "s", "--quiet"}));
  // An option of another command.
  w = find_unknown_word(u, {"status", "--store", "s", "--follow"});
  ASSERT_TRUE(w);
  EXPECT_EQ(w->word, "--follow");
  EXPECT_EQ(w->command, "status");
  w = find_unknown_word(u, {"--quite", "sync"});
  ASSERT_TRUE(w);
  EXPECT_EQ(describe(*w), "unknown option '--quite'; did you mean '--quiet'?");
  w = find_unknown_word(u, {"sync", "--storee=x"});
  ASSERT_TRUE(w);
  EXPECT_EQ(w->word, "--storee");
  EXPECT_EQ(w->suggestion, "--store");
  // Nothing after "--" is looked at; a word with no near name gets no guess.
  EXPECT_FALSE(find_unknown_word(u, {"sync", "--", "--anything"}));
  w = find_unknown_word(u, {"frobnicate"});
  ASSERT_TRUE(w);
  EXPECT_EQ(describe(*w), "unknown command 'frobnicate'");
}

}  // namespace
}  // namespace pgseed::cli
