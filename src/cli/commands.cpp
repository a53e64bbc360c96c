#include "cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <unordered_map>

#include "pgseed/admin.h"
#include "pgseed/error.h"
#include "pgseed/replica.h"

namespace pgseed::cli {

namespace {

std::string json_string(std::string_view s) {
  std::string out;
  append_json_value(out, Value(std::string(s)));
  return out;
}

}  // namespace

LogSink make_log_sink(const CommonOptions& o) {
  auto mu = std::make_shared<std::mutex>();
  bool quiet = o.quiet;
  bool json = o.log_format == "json";
  bool debug = std::getenv("PGSEED_DEBUG") != nullptr;
  return [mu, quiet, json, debug](LogLevel level, std::string_view msg) {
    if (quiet && (level == LogLevel::kInfo || level == LogLevel::kDebug)) return;
    if (level == LogLevel::kDebug && !debug) return;
    const char* name = level == LogLevel::kDebug     ? "debug"
                       : level == LogLevel::kInfo    ? "info"
                       : level == LogLevel::kWarning ? "warning"
                                                     : "error";
    std::lock_guard lock(*mu);
    if (json) {
      char ts[32];
      std::time_t now = std::time(nullptr);
      std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
      std::fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"message\":%s}\n", ts, name,
                   json_string(msg).c_str());
    } else {
      std::fprintf(stderr, "pgseed: %s: %.*s\n", name, int(msg.size()), msg.data());
    }
  };
}

static bool copy_finished(const Progress& p) {
  if (p.tables.empty()) return false;
  for (const auto& t : p.tables)
    if (!t.done) return false;
  return true;
}

std::function<void(const Progress&)> make_progress_renderer(const CommonOptions& o, LogSink log) {
  if (o.quiet) return {};
  bool tty = isatty(2) && o.log_format == "text";
  auto last_line = std::make_shared<double>(-1e9);
  auto live = std::make_shared<bool>(false);
  return [tty, log, last_line, live](const Progress& p) {
    char buf[256];
    if (p.phase == Progress::Phase::kCopy) {
      bool all_done = !p.tables.empty();
      size_t done = 0;
      for (const auto& t : p.tables) done += t.done, all_done = all_done && t.done;
      double rate = p.elapsed_seconds > 0 ? double(p.rows) / p.elapsed_seconds : 0;
      std::string pct = "?", eta = "?";
      // Rows against the catalog's row estimate; without one (never analyzed), COPY
      // bytes against the heap size, which are close for most tables.
      double f = -1;
      if (p.estimated_rows > 0) f = double(p.rows) / double(p.estimated_rows);
      else if (p.estimated_bytes > 0) f = double(p.bytes) / double(p.estimated_bytes);
      if (f >= 0) {
        f = std::min(1.0, f);
        char b[32];
        std::snprintf(b, sizeof b, "%.0f%%", f * 100);
        pct = b;
        if (f > 0 && !all_done) {
          double left = p.elapsed_seconds * (1 - f) / f;
          std::snprintf(b, sizeof b, "%.0fs", left);
          eta = b;
        }
      }
      if (all_done) pct = "100%", eta = "0s";
      std::snprintf(buf, sizeof buf,
                    "copy: %s, %llu rows, %.1f MB, %zu/%zu tables done, %.0f rows/s, ETA %s", pct.c_str(),
                    (unsigned long long)p.rows, double(p.bytes) / 1e6, done, p.tables.size(), rate,
                    eta.c_str());
    } else {
      std::snprintf(buf, sizeof buf, "stream: %llu transactions applied (%.0f/s), at %s, lag %s",
                    (unsigned long long)p.transactions, p.transactions_per_second,
                    p.applied_lsn.str().c_str(),
                    p.lag_bytes < 0 ? "?" : (std::to_string(p.lag_bytes) + " bytes").c_str());
    }
    if (tty && p.phase == Progress::Phase::kCopy) {
      std::fprintf(stderr, "\r\033[K%s", buf);
      *live = true;
      if (p.phase == Progress::Phase::kCopy) {
        bool all_done = !p.tables.empty();
        for (const auto& t : p.tables) all_done = all_done && t.done;
        if (all_done) std::fprintf(stderr, "\n"), *live = false;
      }
      std::fflush(stderr);
    } else if (p.elapsed_seconds - *last_line >= 10 || p.elapsed_seconds < *last_line ||
               (p.phase == Progress::Phase::kCopy && copy_finished(p) && !*live)) {
      if (p.phase == Progress::Phase::kCopy && copy_finished(p)) *live = true;  // once
      *last_line = p.elapsed_seconds;
      if (log) log(LogLevel::kInfo, buf);
    }
  };
}

int run_dump(const DumpOptions& o) {
  auto replica = Replica::open(o.store);
  std::vector<TableInfo> tables = replica->tables();
  if (!o.table.empty()) {
    std::vector<std::string> wanted = parse_table_list(o.table);
    std::erase_if(tables, [&](const TableInfo& t) { return t.name != wanted.at(0); });
    if (tables.empty()) throw Error(ErrorCategory::kConfiguration, "the store has no table " + o.table);
  }
  bool all = o.table.empty();
  std::string line;
  for (const auto& t : tables) {
    if (all && o.format == "csv") std::printf("-- %s\n", t.name.c_str());
    replica->scan(t.name, [&](const Values& row) {
      line.clear();
      if (o.format == "csv") {
        for (size_t i = 0; i < row.size(); ++i) {
          if (i) line += ',';
          append_csv_field(line, row[i], row.size() == 1);
        }
      } else {
        line += all ? "{\"table\":" + json_string(t.name) + ",\"row\":{" : "{";
        for (size_t i = 0; i < row.size(); ++i) {
          if (i) line += ',';
          line += json_string(t.columns[i].name);
          line += ':';
          append_json_value(line, row[i]);
        }
        line += all ? "}}" : "}";
      }
      line += '\n';
      std::fwrite(line.data(), 1, line.size(), stdout);
    });
  }
  if (std::fflush(stdout) != 0) throw Error(ErrorCategory::kConfiguration, "cannot write output");
  return 0;
}

int run_status(const StatusOptions& o, const LogSink&) {
  StatusReport rep = status(o.store, o.source, int64_t(o.max_retained_mb * 1024 * 1024));
  const ReplicaState& st = rep.state;
  if (o.format == "json") {
    std::string out = "{\"store\":" + json_string(o.store) + ",\"phase\":\"" + st.phase +
                      "\",\"slot\":" + json_string(st.slot) + ",\"publication\":" +
                      json_string(st.publication) + ",\"applied_lsn\":\"" + st.applied_lsn.str() +
                      "\",\"last_commit_time\":" + json_string(st.last_commit_time) +
                      ",\"lag_seconds\":" + (rep.lag_seconds < 0 ? "null" : std::to_string(rep.lag_seconds)) +
                      ",\"tables\":[";
    for (size_t i = 0; i < rep.tables.size(); ++i)
      out += std::string(i ? "," : "") + "{\"name\":" + json_string(rep.tables[i].first) +
             ",\"rows\":" + std::to_string(rep.tables[i].second) + "}";
    out += "]";
    if (rep.source_checked) {
      out += ",\"source\":{\"slot_exists\":" + std::string(rep.slot_exists ? "true" : "false");
      if (rep.slot_exists)
        out += ",\"active\":" + std::string(rep.slot_active ? "true" : "false") +
               ",\"confirmed_flush_lsn\":" + json_string(rep.confirmed_flush_lsn) +
               ",\"restart_lsn\":" + json_string(rep.restart_lsn) + ",\"wal_status\":" +
               json_string(rep.wal_status) + ",\"lag_bytes\":" + std::to_string(rep.lag_bytes) +
               ",\"retained_bytes\":" + std::to_string(rep.retained_bytes);
      out += "}";
    }
    out += ",\"healthy\":" + std::string(rep.healthy ? "true" : "false") + ",\"warnings\":[";
    for (size_t i = 0; i < rep.warnings.size(); ++i) out += (i ? "," : "") + json_string(rep.warnings[i]);
    out += "]}\n";
    std::fputs(out.c_str(), stdout);
  } else {
    std::printf("store:            %s\nphase:            %s\nslot:             %s\n"
                "publication:      %s\napplied LSN:      %s\nlast commit:      %s\n",
                o.store.c_str(), st.phase.c_str(), st.slot.c_str(), st.publication.c_str(),
                st.applied_lsn.str().c_str(),
                st.last_commit_time.empty() ? "-" : st.last_commit_time.c_str());
    if (rep.slot_exists)
      std::printf("slot active:      %s\nconfirmed flush:  %s\nrestart LSN:      %s\n"
                  "WAL status:       %s\nlag:              %lld bytes\nretained WAL:     %lld bytes\n",
                  rep.slot_active ? "yes" : "no", rep.confirmed_flush_lsn.c_str(),
                  rep.restart_lsn.c_str(), rep.wal_status.c_str(), (long long)rep.lag_bytes,
                  (long long)rep.retained_bytes);
    std::printf("tables:\n");
    for (const auto& [name, n] : rep.tables)
      std::printf("  %-40s %llu rows\n", name.c_str(), (unsigned long long)n);
    for (const auto& w : rep.warnings) std::printf("warning: %s\n", w.c_str());
    std::printf("health:           %s\n", rep.healthy ? "healthy" : "UNHEALTHY");
  }
  return rep.healthy ? 0 : 9;
}

int run_verify(const VerifyOptions& o, const LogSink& log) {
  VerifyReport rep = verify(o.source, o.store, log);
  for (const auto& t : rep.tables) {
    std::printf("%-40s %s", t.table.c_str(), t.equal() ? "equal" : "DIFFERENT");
    std::printf(" (%llu rows", (unsigned long long)t.source_rows);
    if (!t.equal())
      std::printf("; %llu missing, %llu extra, %llu different", (unsigned long long)t.missing,
                  (unsigned long long)t.extra, (unsigned long long)t.different);
    std::printf(")");
    for (const auto& e : t.examples) std::printf("; %s", e.c_str());
    std::printf("\n");
  }
  std::printf("compared at %s: %s\n", rep.at.str().c_str(),
              rep.equal() ? "all tables equal" : "the store differs from the source");
  return rep.equal() ? 0 : 9;
}

int run_drop(const DropOptions& o, const LogSink& log) {
  drop(o.source, o.store, o.delete_store, log);
  return 0;
}

}  // namespace pgseed::cli
