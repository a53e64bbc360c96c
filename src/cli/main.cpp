// pgseed command line: a thin CLI11 front end over the library.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <string>
#include <unistd.h>

#include "cli/commands.h"
#include "pgseed/error.h"
#include "pgseed/sync.h"

namespace {

std::atomic<pgseed::Sync*> g_running{nullptr};

void on_signal(int) {
  if (pgseed::Sync* s = g_running.load()) s->stop();
}

// Exit codes, one per error category (documented in --help).
int exit_code(pgseed::ErrorCategory c) {
  using C = pgseed::ErrorCategory;
  switch (c) {
    case C::kConnection: return 3;
    case C::kAuthentication: return 4;
    case C::kConfiguration: return 5;
    case C::kSourceState: return 6;
    case C::kStore: return 7;
    case C::kDecode: return 8;
    case C::kInternal: return 1;
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pgseed: bootstrap a local replica of a PostgreSQL database (SQLite or RocksDB) and keep "
      "it current with logical replication."};
  app.require_subcommand(1);
  app.fallthrough();  // --quiet and --log-format also after the subcommand
  app.footer(
      "STORE is sqlite:PATH, rocksdb:PATH or a bare PATH (SQLite).\n"
      "CONNINFO is anything libpq takes (key=value or postgresql:// URI); PG* variables and\n"
      "~/.pgpass apply.\n"
      "Exit codes: 0 success, 1 internal error, 2 usage, 3 connection, 4 authentication,\n"
      "5 configuration, 6 source state (wal_level, slot), 7 store, 8 decode, 9 unhealthy/unequal.");

  pgseed::cli::CommonOptions common;
  app.add_flag("-q,--quiet", common.quiet, "Print errors and warnings only");
  app.add_option("--log-format", common.log_format, "Log lines as text or json")
      ->check(CLI::IsMember({"text", "json"}));

  // sync
  pgseed::SyncOptions sync;
  std::string tables;
  auto* cmd_sync = app.add_subcommand(
      "sync",
      "Create the slot, copy the published tables, then stream changes (first run); resume "
      "streaming (later runs). Without --follow: exit 0 once everything the server had "
      "written at the start is applied.");
  cmd_sync->add_option("--source", sync.source, "Source CONNINFO")->required();
  cmd_sync->add_option("--store", sync.store, "Store: sqlite:PATH, rocksdb:PATH or PATH")->required();
  cmd_sync->add_option("--publication", sync.publication,
                       "Publication to replicate (created for --tables if missing)");
  cmd_sync->add_option("--tables", tables,
                       "Tables to replicate, comma-separated, as SQL names them "
                       "(public.\"Order Items\"); a publication is created for them");
  cmd_sync->add_option("--slot", sync.slot, "Replication slot name (default: generated)");
  cmd_sync->add_option("-j,--jobs", sync.jobs, "Copy connections (default: number of cores)")
      ->check(CLI::Range(0, 256));
  std::string split_size;
  auto* opt_split = cmd_sync->add_option("--split-tables-larger-than", split_size,
                       "Copy a table whose heap is larger than SIZE in parts (ranges of blocks), "
                       "by several connections at once; SIZE in bytes or with kB, MB, GB, TB, "
                       "e.g. 256MB (default 0: copy every table whole)")
      ->type_name("SIZE");
  cmd_sync->add_flag("--follow", sync.follow,
                     "Keep streaming until SIGINT/SIGTERM; reconnect when the connection drops");
  cmd_sync->add_option("--schema-check-interval", sync.schema_check_interval_seconds,
                       "With --follow: compare the store's tables with the source's catalog "
                       "every SECONDS, so that DDL no row change followed reaches the store "
                       "(0: never; a one-shot sync compares once at its end)")
      ->type_name("SECONDS")
      ->default_val(30)
      ->check(CLI::Range(0.0, 86400.0));

  cmd_sync->add_flag("--reseed", sync.reseed,
                     "The store's slot is gone or invalidated: create it anew and copy every "
                     "table again (old rows stay readable until each new copy is in place)");

  // resync
  std::string resync_tables;
  auto* cmd_resync = app.add_subcommand(
      "resync", "Copy tables again under a fresh snapshot (online: the other tables stay as "
                "they are, the old rows readable until the new copy is in place), then catch "
                "up like a one-shot sync");
  cmd_resync->add_option("--source", sync.source, "Source CONNINFO")->required();
  cmd_resync->add_option("--store", sync.store, "Store: sqlite:PATH, rocksdb:PATH or PATH")->required();
  cmd_resync->add_option("--table", resync_tables,
                         "The tables, comma-separated, as SQL names them (public.\"Order Items\")")
      ->required();

  // dump
  pgseed::cli::DumpOptions dump;
  auto* cmd_dump = app.add_subcommand(
      "dump", "Print the store's rows in PostgreSQL's text form (csv as COPY ... (FORMAT csv))");
  cmd_dump->add_option("--store", dump.store, "Store")->required();
  cmd_dump->add_option("--table", dump.table, "Only this table (schema.table)");
  cmd_dump->add_option("--format", dump.format, "csv or jsonl")
      ->check(CLI::IsMember({"csv", "jsonl"}));

  // status
  pgseed::cli::StatusOptions status;
  auto* cmd_status = app.add_subcommand(
      "status", "Store position and tables; with --source, the slot's state, lag and retained WAL. "
                "Exit 9 when unhealthy.");
  cmd_status->add_option("--store", status.store, "Store")->required();
  cmd_status->add_option("--source", status.source, "Source CONNINFO");
  cmd_status->add_option("--format", status.format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  cmd_status->add_option("--max-retained", status.max_retained_mb,
                         "Warn when the slot retains more WAL than this many MB (default 1024)");

  // verify
  pgseed::cli::VerifyOptions verify;
  auto* cmd_verify = app.add_subcommand(
      "verify", "Compare every table of the store with the source; exit 0 only when equal (9 otherwise)");
  cmd_verify->add_option("--source", verify.source, "Source CONNINFO")->required();
  cmd_verify->add_option("--store", verify.store, "Store")->required();

  // drop
  pgseed::cli::DropOptions drop;
  auto* cmd_drop = app.add_subcommand(
      "drop", "Drop the store's slot (and the publication pgseed created) on the source");
  cmd_drop->add_option("--source", drop.source, "Source CONNINFO")->required();
  cmd_drop->add_option("--store", drop.store, "Store")->required();
  cmd_drop->add_flag("--delete-store", drop.delete_store, "Also delete the store");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  pgseed::LogSink sink = pgseed::cli::make_log_sink(common);
  try {
    if (*cmd_sync || *cmd_resync) {
      if (!tables.empty()) sync.tables = pgseed::parse_table_list(tables);
      if (!resync_tables.empty()) sync.resync_tables = pgseed::parse_table_list(resync_tables);
      if (*opt_split)
        sync.split_tables_larger_than =
            pgseed::parse_byte_size(split_size, "--split-tables-larger-than");
      sync.log = sink;
      sync.on_progress = pgseed::cli::make_progress_renderer(common, sink);
      pgseed::Sync s(sync);
      g_running = &s;
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      s.run();
      g_running = nullptr;
      return 0;
    }
    if (*cmd_dump) return pgseed::cli::run_dump(dump);
    if (*cmd_status) return pgseed::cli::run_status(status, sink);
    if (*cmd_verify) return pgseed::cli::run_verify(verify, sink);
    if (*cmd_drop) return pgseed::cli::run_drop(drop, sink);
  } catch (const pgseed::Error& e) {
    std::fprintf(stderr, "pgseed: error: %s\n", e.what());
    return exit_code(e.category());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pgseed: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
