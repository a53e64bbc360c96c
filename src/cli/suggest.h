// "Did you mean ...?" for mistyped subcommands and options. Pure: the known names come
// from the CLI11 app (main.cpp), so tests/unit/test_suggest.cpp needs no parser.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgseed::cli {

// Edits (insert, delete, substitute, swap two adjacent characters) from a to b: optimal
// string alignment distance, so "sycn" is one edit from "sync".
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if one is close enough to be what was meant (leading
// dashes not counted): at most one edit for words of 3 or 4 characters, two for longer
// ones; or else the only candidate that `word` is a prefix of. Ties go to the earlier
// candidate. Empty when none, and always for words of 1 or 2 characters.
std::string closest(std::string_view word, const std::vector<std::string>& candidates);

// The names a command line may use: per command (subcommand name) and global (""), the
// options ("--follow", "-j") and which of them take a value.
struct UsageNames {
  struct Names {
    std::vector<std::string> options;
    std::vector<std::string> with_value;  // options that take a value ("--store")
  };
  std::vector<std::string> commands;  // "sync", "status", ...
  Names global;
  std::map<std::string, Names> by_command;
};

// The first word of a command line (argv without argv[0]) that is neither a command nor an
// option where it stands, with what was probably meant.
struct UnknownWord {
  std::string word;        // as typed, up to any '=' ("--folow")
  std::string command;     // the subcommand it was given to; empty for a command name
  bool is_command = false;
  std::string suggestion;  // empty when nothing is close
};
std::optional<UnknownWord> find_unknown_word(const UsageNames& names,
                                             const std::vector<std::string>& args);

// The one line for it: "unknown command 'sycn'; did you mean 'sync'?",
// "unknown option '--folow' for sync; did you mean '--follow'?".
std::string describe(const UnknownWord& u);

}  // namespace pgseed::cli
