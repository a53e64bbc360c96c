#include "cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <mutex>
#include <set>
#include <unordered_map>

#include <chrono>
#include <cmath>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "cli/progress_format.h"
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

// A JSON string, or null when empty (unknown).
std::string json_or_null(std::string_view s) { return s.empty() ? "null" : json_string(s); }
std::string json_or_null(Lsn lsn) { return lsn.valid() ? json_string(lsn.str()) : "null"; }
// An LSN as the text report shows it: "X/X", or "-" when unknown.
std::string lsn_text(Lsn lsn) { return lsn.valid() ? lsn.str() : "-"; }

// RFC 3339 UTC with milliseconds: 2026-12-05T20:11:30.242Z.
std::string rfc3339(double unix_seconds) {
  std::time_t t = std::time_t(std::floor(unix_seconds));
  int ms = int((unix_seconds - std::floor(unix_seconds)) * 1000);
  if (ms > 999) ms = 999;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

int exit_code_for(ErrorCategory c) {
  using C = ErrorCategory;
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

void print_fatal(const CommonOptions& o, std::string_view message, std::string_view category,
                 int exit_code, const std::string& sqlstate) {
  if (o.log_format == "json") {
    std::string line = "{\"time\":\"" + rfc3339(now_unix()) + "\",\"level\":\"error\",\"message\":" +
                       json_string(message) + ",\"category\":" + json_string(category) +
                       ",\"exit_code\":" + std::to_string(exit_code);
    if (!sqlstate.empty()) line += ",\"sqlstate\":" + json_string(sqlstate);
    line += "}\n";
    std::fputs(line.c_str(), stderr);
  } else {
    std::fprintf(stderr, "pgseed: error: %.*s\n", int(message.size()), message.data());
  }
}

std::string with_password(const std::string& conninfo, const std::string& password) {
  if (password.empty()) return conninfo;
  auto quoted = [](const std::string& v) {
    std::string out = "'";
    for (char c : v) {
      if (c == '\\' || c == '\'') out += '\\';
      out += c;
    }
    return out + "'";
  };
  if (conninfo.rfind("postgresql://", 0) == 0 || conninfo.rfind("postgres://", 0) == 0) {
    std::string enc;
    for (unsigned char c : password) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        enc += char(c);
      } else {
        char b[4];
        std::snprintf(b, sizeof b, "%%%02X", c);
        enc += b;
      }
    }
    return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + "password=" + enc;
  }
  if (!conninfo.empty() && conninfo.find('=') == std::string::npos)  // a bare dbname
    return "dbname=" + quoted(conninfo) + " password=" + quoted(password);
  return conninfo + (conninfo.empty() ? "" : " ") + "password=" + quoted(password);
}

std::string prompt_password() {
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    throw Error(ErrorCategory::kConfiguration,
                "-W needs a terminal to ask for the password; use ~/.pgpass or PGPASSWORD instead");
  termios old{};
  bool restore = tcgetattr(fd, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~tcflag_t(ECHO);
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  const char prompt[] = "Password: ";
  (void)!write(fd, prompt, sizeof prompt - 1);
  std::string pw;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n' && c != '\r') pw += c;
  (void)!write(fd, "\n", 1);
  if (restore) tcsetattr(fd, TCSAFLUSH, &old);
  close(fd);
  return pw;
}

namespace {

// One lock for every line on stderr (log lines from the library's threads, progress).
std::mutex g_stderr_mu;

// One JSON log line; `fields` are more members (",\"rows\":12"), already encoded.
void write_json_line(const char* level, std::string_view msg, const std::string& fields = {}) {
  std::string line = "{\"time\":\"" + rfc3339(now_unix()) + "\",\"level\":\"" + level +
                     "\",\"message\":" + json_string(msg) + fields + "}\n";
  std::lock_guard lock(g_stderr_mu);
  std::fputs(line.c_str(), stderr);
}

}  // namespace

LogSink make_log_sink(const CommonOptions& o) {
  bool quiet = o.quiet;
  bool json = o.log_format == "json";
  bool debug = std::getenv("PGSEED_DEBUG") != nullptr;
  return [quiet, json, debug](LogLevel level, std::string_view msg) {
    if (quiet && (level == LogLevel::kInfo || level == LogLevel::kDebug)) return;
    if (level == LogLevel::kDebug && !debug) return;
    const char* name = level == LogLevel::kDebug     ? "debug"
                       : level == LogLevel::kInfo    ? "info"
                       : level == LogLevel::kWarning ? "warning"
                                                     : "error";
    if (json) {
      write_json_line(name, msg);
    } else {
      std::lock_guard lock(g_stderr_mu);
      std::fprintf(stderr, "pgseed: %s: %.*s\n", name, int(msg.size()), msg.data());
    }
  };
}

namespace {

// Columns of the terminal on stderr; 0 when stderr is no terminal (no clipping).
size_t terminal_width() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return 0;
  return ws.ws_col;
}

double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// State of one sync's progress output, kept between reports (all on the sync's thread).
struct ProgressOutput {
  bool tty = false, json = false;
  LogSink log;
  double last_copy_line = -1e9;  // elapsed time of the last copy log line
  double last_elapsed = -1;      // of the last copy report
  size_t tables = 0;             // in the last copy report
  bool live = false;             // a live copy line is on the terminal, not yet ended
  bool summarized = false;       // the current copy's summary is printed
  CopyTimings timings;
  StreamReporter stream;

  void line(const std::string& text, const std::string& fields) {
    if (json) write_json_line("info", text, fields);
    else if (log) log(LogLevel::kInfo, text);
  }

  void copy(const Progress& p) {
    if (p.elapsed_seconds < last_elapsed || p.tables.size() != tables) {  // another copy
      summarized = false;
      last_copy_line = -1e9;
    }
    last_elapsed = p.elapsed_seconds;
    tables = p.tables.size();
    timings.observe(p);
    bool finished = copy_figures(p).all_done;
    if (summarized) return;
    std::string text = copy_line(p);
    if (tty) {
      // One live line, rewritten in place; a line wider than the terminal would wrap and
      // leave its head behind at each rewrite, so it is clipped (the last column kept free).
      size_t width = terminal_width();
      std::lock_guard lock(g_stderr_mu);
      std::fprintf(stderr, "\r\033[K%s", clip_to_width(text, width > 1 ? width - 1 : width).c_str());
      live = !finished;
      if (finished) std::fputc('\n', stderr);
      std::fflush(stderr);
    } else if (p.elapsed_seconds - last_copy_line >= 10 || finished) {
      last_copy_line = p.elapsed_seconds;
      line(text, copy_json_fields(p));
    }
    if (finished) {
      summarized = true;
      for (const auto& l : copy_summary(p, timings)) line(l.text, l.json_fields);
    }
  }

  void streaming(const Progress& p) {
    if (live) {  // a copy that ended without its last report: end its line
      std::lock_guard lock(g_stderr_mu);
      std::fputc('\n', stderr);
      live = false;
    }
    summarized = false;
    last_copy_line = last_elapsed = -1e9;
    if (auto l = stream.observe(p, monotonic_seconds())) line(l->text, l->json_fields);
  }
};

}  // namespace

std::function<void(const Progress&)> make_progress_renderer(const CommonOptions& o, LogSink log) {
  if (o.quiet) return {};
  auto out = std::make_shared<ProgressOutput>();
  out->json = o.log_format == "json";
  out->tty = isatty(STDERR_FILENO) && !out->json;
  out->log = std::move(log);
  return [out](const Progress& p) {
    if (p.phase == Progress::Phase::kCopy) out->copy(p);
    else out->streaming(p);
  };
}

int run_dump(const DumpOptions& o) {
  // One view for every table: a dump while a sync runs is the store at one applied LSN.
  auto replica = Replica::open(o.store, {.pinned = true});
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

namespace {

// Warnings by how a monitoring check rates them (the rest are for information).
bool critical_code(const std::string& c) {
  return c == "copy_unfinished" || c == "store_empty" || c == "slot_missing" ||
         c == "slot_invalidated" || c == "publication_missing";
}
bool warning_code(const std::string& c) {
  return c == "retained_wal" || c == "slot_unreserved" || c == "slot_inactive";
}

std::string num(double v, int decimals = 3) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

std::string status_json(const StatusOptions& o, const StatusReport* rep, const std::string& error,
                        double now) {
  std::string out = "{\"time\":\"" + rfc3339(now) + "\",\"store\":" + json_string(o.store);
  const ReplicaState* st = rep ? &rep->state : nullptr;
  out += ",\"phase\":" + (st ? json_string(to_string(st->phase)) : "null");
  out += ",\"slot\":" + (st ? json_or_null(st->slot) : "null");
  out += ",\"publication\":" + (st ? json_or_null(st->publication) : "null");
  out += ",\"applied_lsn\":" + (st && st->phase != ReplicaState::Phase::kEmpty ? json_string(st->applied_lsn.str()) : "null");
  out += ",\"timeline\":" + (st && st->timeline ? std::to_string(st->timeline) : "null");
  out += ",\"last_commit_time\":" + (rep ? json_or_null(rep->last_commit_time) : "null");
  out += ",\"lag_bytes\":" + (rep && rep->lag_bytes >= 0 ? std::to_string(rep->lag_bytes) : "null");
  out += ",\"lag_seconds\":" + (rep && rep->lag_seconds >= 0 ? num(rep->lag_seconds) : "null");
  out += ",\"tables\":";
  if (!rep) {
    out += "null";
  } else {
    out += "[";
    for (size_t i = 0; i < rep->tables.size(); ++i)
      out += std::string(i ? "," : "") + "{\"name\":" + json_string(rep->tables[i].first) +
             ",\"rows\":" + std::to_string(rep->tables[i].second) + "}";
    out += "]";
  }
  out += ",\"source\":";
  if (!rep || o.source.empty()) {
    out += "null";
  } else {
    bool ok = rep->source_checked;
    auto b = [&](bool v) { return !ok ? std::string("null") : v ? "true" : "false"; };
    bool slot = ok && rep->slot_exists;
    out += "{\"checked\":" + std::string(ok ? "true" : "false") +
           ",\"server_lsn\":" + json_or_null(rep->server_lsn) + ",\"slot_exists\":" + b(rep->slot_exists) +
           ",\"active\":" + (slot ? b(rep->slot_active) : "null") +
           ",\"invalid\":" + (slot ? b(rep->slot_invalid) : "null") +
           ",\"confirmed_flush_lsn\":" + json_or_null(rep->confirmed_flush_lsn) +
           ",\"restart_lsn\":" + json_or_null(rep->restart_lsn) +
           ",\"wal_status\":" + json_or_null(rep->wal_status) +
           ",\"retained_bytes\":" + (rep->retained_bytes >= 0 ? std::to_string(rep->retained_bytes) : "null") +
           ",\"standby\":" + b(rep->source_is_standby) +
           ",\"failover\":" + (slot ? b(rep->slot_failover) : "null") +
           ",\"synced\":" + (slot ? b(rep->slot_synced) : "null") +
           ",\"sync_ready\":" + (slot ? b(rep->slot_sync_ready) : "null") +
           ",\"synchronized_standby_slots\":" + json_or_null(rep->synchronized_standby_slots) +
           "}";
  }
  out += ",\"healthy\":" + std::string(rep && rep->healthy ? "true" : "false") + ",\"warnings\":[";
  if (rep)
    for (size_t i = 0; i < rep->warnings.size(); ++i)
      out += std::string(i ? "," : "") + "{\"code\":" + json_string(rep->warnings[i].code) +
             ",\"message\":" + json_string(rep->warnings[i].message) + "}";
  out += "],\"error\":" + json_or_null(error) + "}\n";
  return out;
}

// Prometheus text exposition format (version 0.0.4), for node_exporter's textfile collector.
std::string status_prometheus(const StatusOptions& o, const StatusReport* rep) {
  auto label = [](const std::string& v) {
    std::string out;
    for (char c : v) {
      if (c == '\\' || c == '"') out += '\\', out += c;
      else if (c == '\n') out += "\\n";
      else out += c;
    }
    return out;
  };
  std::string labels = "store=\"" + label(o.store) + "\",slot=\"" +
                       label(rep ? rep->state.slot : std::string()) + "\"";
  std::string out;
  auto metric = [&](const char* name, const char* help, const std::string& value,
                    const std::string& extra_labels = {}) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
    out += std::string(name) + "{" + labels + extra_labels + "} " + value + "\n";
  };
  bool up = rep && (o.source.empty() || rep->source_checked);
  metric("pgseed_up", "1 when the store (and the source, when given) could be read, else 0.", up ? "1" : "0");
  if (!rep) return out;
  metric("pgseed_healthy", "1 when pgseed status finds the replica healthy, else 0.", rep->healthy ? "1" : "0");
  if (rep->state.phase != ReplicaState::Phase::kEmpty)
    metric("pgseed_applied_lsn", "The store's applied WAL position (LSN as a number).",
           std::to_string(rep->state.applied_lsn.value));
  metric("pgseed_tables", "Tables in the store.", std::to_string(rep->tables.size()));
  if (!rep->tables.empty()) {
    out += "# HELP pgseed_table_rows Rows of each table in the store.\n# TYPE pgseed_table_rows gauge\n";
    for (const auto& [name, n] : rep->tables)
      out += "pgseed_table_rows{" + labels + ",table=\"" + label(name) + "\"} " + std::to_string(n) + "\n";
  }
  if (rep->last_commit_unix >= 0)
    metric("pgseed_last_commit_timestamp_seconds",
           "Commit time of the last applied source transaction (Unix time).", num(rep->last_commit_unix, 6));
  if (rep->lag_bytes >= 0)
    metric("pgseed_lag_bytes", "The source's WAL position minus the store's applied LSN.",
           std::to_string(rep->lag_bytes));
  if (rep->lag_seconds >= 0)
    metric("pgseed_lag_seconds", "Replay lag: 0 when caught up, else the age of the oldest unapplied commit (approximation).",
           num(rep->lag_seconds));
  if (rep->source_checked) {
    if (rep->retained_bytes >= 0)
      metric("pgseed_retained_wal_bytes", "WAL the slot retains on the source.",
             std::to_string(rep->retained_bytes));
    metric("pgseed_slot_exists", "1 when the store's slot exists on the source.", rep->slot_exists ? "1" : "0");
    if (rep->slot_exists) {
      metric("pgseed_slot_active", "1 while a sync streams from the slot.", rep->slot_active ? "1" : "0");
      metric("pgseed_slot_invalid", "1 when the server invalidated the slot (wal_status lost).",
             rep->slot_invalid ? "1" : "0");
    }
  }
  return out;
}

struct CheckResult {
  int code = 0;
  std::string line;
};

// Monitoring-plugin rules: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, one line with perfdata.
CheckResult status_check(const StatusOptions& o, const StatusReport* rep, const std::string& error) {
  static const char* kNames[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
  CheckResult c;
  std::string text;
  if (!rep) {
    c.code = 2;
    text = "cannot read the store: " + error;
  } else if (!o.source.empty() && !rep->source_checked) {
    c.code = 3;
    text = "cannot read the source: " + rep->source_error;
  } else {
    std::vector<std::string> reasons;
    for (const auto& w : rep->warnings) {
      if (critical_code(w.code)) c.code = 2, reasons.insert(reasons.begin(), w.message);
      else if (warning_code(w.code)) c.code = std::max(c.code, 1), reasons.push_back(w.message);
    }
    if (rep->lag_seconds >= 0) {
      if (rep->lag_seconds >= o.crit_lag) c.code = 2, reasons.insert(reasons.begin(), "lag " + num(rep->lag_seconds, 0) + " s >= " + num(o.crit_lag, 0) + " s");
      else if (rep->lag_seconds >= o.warn_lag) c.code = std::max(c.code, 1), reasons.insert(reasons.begin(), "lag " + num(rep->lag_seconds, 0) + " s >= " + num(o.warn_lag, 0) + " s");
    }
    text = std::string(to_string(rep->state.phase)) + " at " + rep->state.applied_lsn.str();
    if (rep->lag_seconds >= 0) text += ", lag " + num(rep->lag_seconds, 1) + " s";
    if (rep->lag_bytes >= 0) text += " (" + std::to_string(rep->lag_bytes) + " bytes)";
    if (o.source.empty()) text += ", source not checked";
    if (!reasons.empty()) text = reasons.front() + "; " + text;
  }
  c.line = std::string("PGSEED ") + kNames[c.code] + " - " + text;
  if (rep) {
    c.line += " |";
    if (rep->lag_seconds >= 0)
      c.line += " lag_seconds=" + num(rep->lag_seconds) + "s;" + num(o.warn_lag, 0) + ";" + num(o.crit_lag, 0);
    if (rep->lag_bytes >= 0) c.line += " lag_bytes=" + std::to_string(rep->lag_bytes) + "B";
    if (rep->retained_bytes >= 0) c.line += " retained_wal_bytes=" + std::to_string(rep->retained_bytes) + "B";
    c.line += " tables=" + std::to_string(rep->tables.size());
  }
  for (char& ch : c.line)
    if (ch == '\n') ch = ' ';
  return c;
}

}  // namespace

int run_status(const StatusOptions& o, const LogSink&) {
  double now = now_unix();
  std::optional<StatusReport> rep;
  std::string store_error;
  int store_error_code = 7;
  try {
    rep = status(pgseed::StatusOptions{.source = o.source,
                                       .store = o.store,
                                       .max_retained_bytes = int64_t(o.max_retained_mb * 1024 * 1024)});
  } catch (const Error& e) {
    // The formats for machines still print what they know.
    if (o.format == "text") throw;
    store_error = e.what();
    store_error_code = exit_code_for(e.category());
  }
  const StatusReport* r = rep ? &*rep : nullptr;
  if (o.format == "json") {
    std::fputs(status_json(o, r, r ? r->source_error : store_error, now).c_str(), stdout);
    std::fflush(stdout);
    return !r ? store_error_code : r->healthy ? 0 : 9;
  }
  if (o.format == "prometheus") {
    std::fputs(status_prometheus(o, r).c_str(), stdout);
    std::fflush(stdout);
    return 0;
  }
  if (o.format == "nagios") {
    CheckResult c = status_check(o, r, store_error);
    std::printf("%s\n", c.line.c_str());
    std::fflush(stdout);
    return c.code;
  }
  const ReplicaState& st = r->state;
  std::printf("store:            %s\nphase:            %s\nslot:             %s\n"
              "publication:      %s\napplied LSN:      %s\nlast commit:      %s\n",
              o.store.c_str(), to_string(st.phase), st.slot.empty() ? "-" : st.slot.c_str(),
              st.publication.empty() ? "-" : st.publication.c_str(), st.applied_lsn.str().c_str(),
              r->last_commit_time.empty() ? "-" : r->last_commit_time.c_str());
  if (st.timeline) std::printf("timeline:         %u\n", st.timeline);
  if (!r->source_error.empty()) std::printf("source:           cannot be read: %s\n", r->source_error.c_str());
  if (r->source_checked) {
    std::printf("server WAL:       %s\n", lsn_text(r->server_lsn).c_str());
    if (r->lag_bytes >= 0) std::printf("lag:              %lld bytes", (long long)r->lag_bytes);
    if (r->lag_seconds >= 0) std::printf(", %.1f s", r->lag_seconds);
    std::printf("\n");
  }
  if (r->slot_exists)
    std::printf("slot active:      %s\nconfirmed flush:  %s\nrestart LSN:      %s\n"
                "WAL status:       %s\nretained WAL:     %lld bytes\n",
                r->slot_active ? "yes" : "no", lsn_text(r->confirmed_flush_lsn).c_str(),
                lsn_text(r->restart_lsn).c_str(), r->wal_status.c_str(), (long long)r->retained_bytes);
  if (r->slot_exists && r->slot_failover && !r->source_is_standby)
    std::printf("failover slot:    yes (synchronized_standby_slots: %s)\n",
                r->synchronized_standby_slots.empty() ? "none" : r->synchronized_standby_slots.c_str());
  else if (r->slot_exists && !r->source_is_standby)
    std::printf("failover slot:    no\n");
  if (r->slot_exists && r->source_is_standby)
    std::printf("synced:           %s\n", !r->slot_synced ? "no (a slot of the standby's own)"
                                          : r->slot_sync_ready ? "yes, ready for a promotion"
                                                               : "yes, not ready for a promotion yet");
  std::printf("tables:\n");
  for (const auto& [name, n] : r->tables)
    std::printf("  %-40s %llu rows\n", name.c_str(), (unsigned long long)n);
  for (const auto& w : r->warnings) std::printf("warning: %s (%s)\n", w.message.c_str(), w.code.c_str());
  std::printf("health:           %s\n", r->healthy ? "healthy" : "UNHEALTHY");
  return r->healthy ? 0 : 9;
}

int run_verify(const VerifyOptions& o, const LogSink& log) {
  VerifyReport rep =
      verify(pgseed::VerifyOptions{.source = o.source,
                                   .store = o.store,
                                   .primary = o.primary,
                                   .from = o.from,
                                   .hub_wait_seconds = o.hub_wait_seconds},
             log);
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
  if (!o.slot.empty()) {
    if (o.delete_store)
      throw Error(ErrorCategory::kConfiguration, "--slot drops a slot without a store; --delete-store needs --store instead");
    drop_slot(o.source, o.slot, log);
    return 0;
  }
  std::string store = o.store;
  if (store.empty() && std::getenv("PGSEED_STORE")) store = std::getenv("PGSEED_STORE");
  if (store.empty())
    throw Error(ErrorCategory::kConfiguration, "drop needs --store STORE (or --slot NAME for a slot without a store)");
  drop(pgseed::DropOptions{.source = o.source, .store = store, .delete_store = o.delete_store}, log);
  return 0;
}

}  // namespace pgseed::cli
