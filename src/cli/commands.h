// The CLI's subcommands other than sync (which is the library's Sync).
#pragma once

#include <string>
#include <vector>

#include <functional>
#include <string_view>

#include "pgseed/error.h"
#include "pgseed/log.h"
#include "pgseed/sync.h"

namespace pgseed::cli {

struct CommonOptions {
  bool quiet = false;
  std::string log_format = "text";
};
// Log lines to stderr: "pgseed: <level>: <message>" or one JSON object per line.
LogSink make_log_sink(const CommonOptions& o);

// Exit codes, one per error category (documented in --help and README).
int exit_code_for(ErrorCategory c);

// The one line a failed command ends with, in the log format: "pgseed: error: <message>",
// or a JSON object with "level":"error", the message, its category and the exit code.
void print_fatal(const CommonOptions& o, std::string_view message, std::string_view category,
                 int exit_code, const std::string& sqlstate = {});

// --source/--store defaults: an empty conninfo means libpq's defaults and PG* variables;
// `password` (from -W) is added to the conninfo, never printed.
std::string with_password(const std::string& conninfo, const std::string& password);
// Reads a password from the terminal without echo (as psql -W); throws Error when there
// is no terminal.
std::string prompt_password();

// Renders sync progress (texts from progress_format.h). Copy: a live line on a terminal,
// clipped to its width, else a log line every 10 s; once every table is copied, the
// summary (totals, then the largest tables). Streaming: StreamReporter's lines.
std::function<void(const Progress&)> make_progress_renderer(const CommonOptions& o, LogSink log);

struct DumpOptions {
  std::string store, table, format = "csv";
};
int run_dump(const DumpOptions& o);

struct StatusOptions {
  std::string store, source, format = "text";  // text, json, prometheus, nagios
  double max_retained_mb = 1024;
  double warn_lag = 300, crit_lag = 3600;  // seconds, for --format nagios / --check
};
// text/json: 0 healthy, 9 unhealthy, the error's code when the store cannot be read or the
// source cannot be reached (json still prints one object, with "error"). prometheus: 0
// once the exposition is printed (health is in the metrics). nagios: 0 ok, 1 warning,
// 2 critical, 3 unknown, with one status line.
int run_status(const StatusOptions& o, const LogSink& log);

struct VerifyOptions {
  std::string source, store;
  std::string primary;  // the standby source's primary (pg_log_standby_snapshot), or empty
  std::string from;     // an edge: the NATS stream it follows
  int hub_wait_seconds = 60;
};
int run_verify(const VerifyOptions& o, const LogSink& log);

struct DropOptions {
  std::string source, store, slot;  // slot: drop that slot alone, without a store
  bool delete_store = false;
};
int run_drop(const DropOptions& o, const LogSink& log);

}  // namespace pgseed::cli
