// The CLI's subcommands other than sync (which is the library's Sync).
#pragma once

#include <string>
#include <vector>

#include <functional>

#include "pgseed/log.h"
#include "pgseed/sync.h"

namespace pgseed::cli {

struct CommonOptions {
  bool quiet = false;
  std::string log_format = "text";
};
// Log lines to stderr: "pgseed: <level>: <message>" or one JSON object per line.
LogSink make_log_sink(const CommonOptions& o);

// Renders sync progress: a live line on a terminal, a log line every 10 s otherwise.
std::function<void(const Progress&)> make_progress_renderer(const CommonOptions& o, LogSink log);

struct DumpOptions {
  std::string store, table, format = "csv";
};
int run_dump(const DumpOptions& o);

struct StatusOptions {
  std::string store, source, format = "text";
  double max_retained_mb = 1024;
};
int run_status(const StatusOptions& o, const LogSink& log);

struct VerifyOptions {
  std::string source, store;
};
int run_verify(const VerifyOptions& o, const LogSink& log);

struct DropOptions {
  std::string source, store;
  bool delete_store = false;
};
int run_drop(const DropOptions& o, const LogSink& log);

}  // namespace pgseed::cli
