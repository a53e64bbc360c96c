#include "cli/suggest.h"

#include <algorithm>

namespace pgseed::cli {

size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[n][m];
}

namespace {

std::string_view undashed(std::string_view s) {
  while (!s.empty() && s.front() == '-') s.remove_prefix(1);
  return s;
}

}  // namespace

std::string closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string_view w = undashed(word);
  if (w.empty()) return {};
  // A one- or two-letter word is too short to guess from ('-x' is not a typo of '-h').
  if (w.size() <= 2) return {};
  const size_t allowed = w.size() <= 4 ? 1 : 2;
  std::string best;
  size_t best_distance = allowed + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(w, undashed(c));
    if (d < best_distance) best = c, best_distance = d;
  }
  if (!best.empty()) return best;
  std::string only;
  for (const auto& c : candidates) {
    if (undashed(c).substr(0, w.size()) != w) continue;
    if (!only.empty()) return {};  // a prefix of several: no guess
    only = c;
  }
  return only;
}

namespace {

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

std::optional<UnknownWord> find_unknown_word(const UsageNames& names,
                                             const std::vector<std::string>& args) {
  std::string command;  // the subcommand once it is named
  auto known = [&](std::string_view opt) {
    if (contains(names.global.options, opt)) return true;
    auto it = names.by_command.find(command);
    return it != names.by_command.end() && contains(it->second.options, opt);
  };
  auto takes_value = [&](std::string_view opt) {
    if (contains(names.global.with_value, opt)) return true;
    auto it = names.by_command.find(command);
    return it != names.by_command.end() && contains(it->second.with_value, opt);
  };
  auto options_here = [&] {
    std::vector<std::string> all;
    auto it = names.by_command.find(command);
    if (it != names.by_command.end()) all = it->second.options;
    all.insert(all.end(), names.global.options.begin(), names.global.options.end());
    return all;
  };
  auto unknown_option = [&](const std::string& word) {
    return UnknownWord{word, command, false, closest(word, options_here())};
  };

  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a.rfind("--", 0) == 0) {
      size_t eq = a.find('=');
      std::string name = a.substr(0, eq);
      if (!known(name)) return unknown_option(name);
      if (eq == std::string::npos && takes_value(name)) ++i;
    } else if (a.size() > 1 && a[0] == '-') {
      // Short options, possibly grouped (-qW) or with the value attached (-j4).
      for (size_t k = 1; k < a.size(); ++k) {
        std::string name = std::string("-") + a[k];
        if (!known(name)) return unknown_option(name);
        if (takes_value(name)) {
          if (k + 1 == a.size()) ++i;  // the value is the next word
          break;
        }
      }
    } else if (command.empty()) {
      if (!contains(names.commands, a)) return UnknownWord{a, "", true, closest(a, names.commands)};
      command = a;
    }
    // A word where no value is expected after the command: the parser says so.
  }
  return std::nullopt;
}

std::string describe(const UnknownWord& u) {
  std::string line = u.is_command ? "unknown command '" + u.word + "'"
                                  : "unknown option '" + u.word + "'" +
                                        (u.command.empty() ? "" : " for " + u.command);
  if (!u.suggestion.empty()) line += "; did you mean '" + u.suggestion + "'?";
  return line;
}

}  // namespace pgseed::cli
