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

#include "decode/copy_text.h"
#include "pg/catalog.h"
#include "pg/connection.h"
#include "pg/identifiers.h"
#include "pgseed/error.h"
#include "store/store.h"
#include "store/value_codec.h"

namespace pgseed::cli {

namespace {

std::string json_string(std::string_view s) {
  std::string out;
  append_json_value(out, Datum::of(s));
  return out;
}

const TableDef* find_table(const std::vector<TableDef>& tables, const std::string& name) {
  QualifiedName q = parse_qualified_name(name);
  for (const auto& t : tables)
    if (t.schema == q.schema && t.name == q.name) return &t;
  return nullptr;
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
    } else if (p.elapsed_seconds - *last_line >= 10 || p.elapsed_seconds < *last_line) {
      *last_line = p.elapsed_seconds;
      if (log) log(LogLevel::kInfo, buf);
    }
  };
}

std::vector<std::string> split_tables(const std::string& list) {
  std::vector<std::string> out;
  for (const auto& n : parse_name_list(list))
    out.push_back(quote_ident(n.schema) + "." + quote_ident(n.name));
  if (out.empty()) throw Error(ErrorCategory::kConfiguration, "--tables names no table");
  return out;
}

int run_dump(const DumpOptions& o) {
  auto store = Store::open(o.store, /*must_exist=*/true);
  std::vector<TableDef> tables = store->tables();
  if (!o.table.empty()) {
    const TableDef* t = find_table(tables, o.table);
    if (!t) throw Error(ErrorCategory::kConfiguration, "the store has no table " + o.table);
    tables = {*t};
  }
  bool all = o.table.empty();
  std::string line;
  for (const auto& t : tables) {
    std::string qname = t.qualified();
    if (all && o.format == "csv") std::printf("-- %s\n", qname.c_str());
    store->scan(t, [&](const Row& row) {
      line.clear();
      if (o.format == "csv") {
        for (size_t i = 0; i < row.size(); ++i) {
          if (i) line += ',';
          append_csv_field(line, row[i], row.size() == 1);
        }
      } else {
        line += all ? "{\"table\":" + json_string(qname) + ",\"row\":{" : "{";
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

int run_status(const StatusOptions& o, const LogSink& log) {
  (void)log;
  auto store = Store::open(o.store, /*must_exist=*/true);
  StoreState st = store->state();
  std::vector<std::string> warnings;
  bool healthy = st.phase == StoreState::Phase::kStreaming;
  if (st.phase == StoreState::Phase::kCopying)
    warnings.push_back("the initial copy did not finish; run pgseed sync to restart it");

  struct Slot {
    bool exists = false;
    std::string active, confirmed, restart, wal_status;
    long long lag_bytes = -1, retained_bytes = -1;
  } slot;
  if (!o.source.empty()) {
    pg::Connection conn = pg::Connection::open(o.source);
    pg::Result r = conn.exec_params(
        "SELECT active::text, coalesce(confirmed_flush_lsn::text, ''), coalesce(restart_lsn::text, ''), "
        "  coalesce(wal_status, ''), "
        "  coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), $2::pg_lsn)::bigint, -1), "
        "  coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, -1) "
        "FROM pg_replication_slots WHERE slot_name = $1",
        {st.slot, st.applied_lsn.str()}, "reading the slot");
    if (PQntuples(r.get()) == 1) {
      slot.exists = true;
      slot.active = PQgetvalue(r.get(), 0, 0);
      slot.confirmed = PQgetvalue(r.get(), 0, 1);
      slot.restart = PQgetvalue(r.get(), 0, 2);
      slot.wal_status = PQgetvalue(r.get(), 0, 3);
      slot.lag_bytes = std::stoll(PQgetvalue(r.get(), 0, 4));
      slot.retained_bytes = std::stoll(PQgetvalue(r.get(), 0, 5));
      if (slot.wal_status == "lost") {
        healthy = false;
        warnings.push_back("slot " + st.slot + " was invalidated (max_slot_wal_keep_size); "
                           "the replica cannot catch up: re-sync into a new store");
      }
      if (slot.retained_bytes > o.max_retained_mb * 1024 * 1024) {
        healthy = false;
        warnings.push_back("slot " + st.slot + " retains " +
                           std::to_string(slot.retained_bytes / (1024 * 1024)) +
                           " MB of WAL; run pgseed sync, or pgseed drop if the replica is gone");
      }
    } else {
      healthy = false;
      warnings.push_back("slot " + st.slot + " does not exist on the source");
    }
    if (!st.publication.empty() && !pg::publication_exists(conn, st.publication)) {
      healthy = false;
      warnings.push_back("publication " + st.publication + " does not exist on the source");
    }
  }

  std::vector<std::pair<std::string, uint64_t>> counts;
  for (const auto& t : store->tables()) counts.push_back({t.qualified(), store->count(t)});

  if (o.format == "json") {
    std::string out = "{\"store\":" + json_string(o.store) + ",\"phase\":\"" + phase_name(st.phase) +
                      "\",\"slot\":" + json_string(st.slot) + ",\"publication\":" +
                      json_string(st.publication) + ",\"applied_lsn\":\"" + st.applied_lsn.str() +
                      "\",\"last_commit_time\":" + json_string(st.last_commit_time) + ",\"tables\":[";
    for (size_t i = 0; i < counts.size(); ++i)
      out += std::string(i ? "," : "") + "{\"name\":" + json_string(counts[i].first) +
             ",\"rows\":" + std::to_string(counts[i].second) + "}";
    out += "]";
    if (!o.source.empty()) {
      out += ",\"source\":{\"slot_exists\":" + std::string(slot.exists ? "true" : "false");
      if (slot.exists)
        out += ",\"active\":" + slot.active + ",\"confirmed_flush_lsn\":" + json_string(slot.confirmed) +
               ",\"restart_lsn\":" + json_string(slot.restart) + ",\"wal_status\":" +
               json_string(slot.wal_status) + ",\"lag_bytes\":" + std::to_string(slot.lag_bytes) +
               ",\"retained_bytes\":" + std::to_string(slot.retained_bytes);
      out += "}";
    }
    out += ",\"healthy\":" + std::string(healthy ? "true" : "false") + ",\"warnings\":[";
    for (size_t i = 0; i < warnings.size(); ++i) out += (i ? "," : "") + json_string(warnings[i]);
    out += "]}\n";
    std::fputs(out.c_str(), stdout);
  } else {
    std::printf("store:            %s\nphase:            %s\nslot:             %s\n"
                "publication:      %s\napplied LSN:      %s\nlast commit:      %s\n",
                o.store.c_str(), phase_name(st.phase), st.slot.c_str(), st.publication.c_str(),
                st.applied_lsn.str().c_str(),
                st.last_commit_time.empty() ? "-" : st.last_commit_time.c_str());
    if (!o.source.empty() && slot.exists)
      std::printf("slot active:      %s\nconfirmed flush:  %s\nrestart LSN:      %s\n"
                  "WAL status:       %s\nlag:              %lld bytes\nretained WAL:     %lld bytes\n",
                  slot.active.c_str(), slot.confirmed.c_str(), slot.restart.c_str(),
                  slot.wal_status.c_str(), slot.lag_bytes, slot.retained_bytes);
    std::printf("tables:\n");
    for (const auto& [name, n] : counts) std::printf("  %-40s %llu rows\n", name.c_str(), (unsigned long long)n);
    for (const auto& w : warnings) std::printf("warning: %s\n", w.c_str());
  }
  return healthy ? 0 : 9;
}

int run_verify(const VerifyOptions& o, const LogSink& log) {
  auto store = Store::open(o.store, /*must_exist=*/true);
  StoreState st = store->state();
  if (st.phase != StoreState::Phase::kStreaming)
    throw Error(ErrorCategory::kStore, "store " + o.store + " has not finished its initial copy");
  pg::Connection conn = pg::Connection::open(o.source);
  conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");

  // Rows are compared by a hash of their values, keyed by their key (or, without a key,
  // as a multiset of row hashes), so memory is a few dozen bytes per row.
  auto row_hash = [](const Row& row) {
    uint64_t h = 1469598103934665603ull;
    for (const auto& d : row) {
      auto mix = [&](unsigned char c) { h = (h ^ c) * 1099511628211ull; };
      mix(d.is_null() ? 0 : 1);
      for (unsigned char c : d.text) mix(c);
      for (int i = 0; i < 8; ++i) mix((unsigned char)(d.text.size() >> (8 * i)));
    }
    return h;
  };
  auto key_of = [](const TableDef& t, const Row& row) {
    std::string k;
    for (size_t i = 0; i < row.size(); ++i)
      if (t.columns[i].key_position > 0) {
        k += std::to_string(row[i].text.size()) + ":";
        k += row[i].text;
      }
    return k;
  };
  auto key_text = [](const TableDef& t, const Row& row) {
    std::string k;
    for (size_t i = 0; i < row.size(); ++i)
      if (t.columns[i].key_position > 0) k += (k.empty() ? "" : ",") + std::string(row[i].text);
    return "(" + k + ")";
  };

  bool all_equal = true;
  for (const auto& t : store->tables()) {
    bool keyed = t.has_key();
    std::unordered_map<std::string, std::pair<uint64_t, std::string>> store_rows;  // key -> hash, display
    std::map<uint64_t, long long> store_multiset;
    store->scan(t, [&](const Row& row) {
      if (keyed) store_rows[key_of(t, row)] = {row_hash(row), key_text(t, row)};
      else ++store_multiset[row_hash(row)];
    });
    pg::PublishedTable pt{t, ""};
    auto src = pg::published_tables_by_oid(conn, st.publication, t.source_oid);
    if (!src.empty()) pt.row_filter = src[0].row_filter;
    conn.exec(pg::copy_query(pt), ("reading " + t.qualified()).c_str());
    long long missing = 0, extra = 0, different = 0;
    std::vector<std::string> examples;
    RowBatch batch;
    Row row;
    for (;;) {
      char* buf = nullptr;
      int len = PQgetCopyData(conn.get(), &buf, 0);
      if (len == -1) break;
      if (len == -2) throw pg::error_from_result(nullptr, conn.get(), "reading " + t.qualified());
      batch.clear();
      parse_copy_text_line(std::string_view(buf, size_t(len)), t.columns.size(), batch);
      PQfreemem(buf);
      batch.row(0, row);
      if (keyed) {
        auto it = store_rows.find(key_of(t, row));
        if (it == store_rows.end()) {
          ++missing;
          if (examples.size() < 5) examples.push_back("missing " + key_text(t, row));
        } else {
          if (it->second.first != row_hash(row)) {
            ++different;
            if (examples.size() < 5) examples.push_back("different " + key_text(t, row));
          }
          store_rows.erase(it);
        }
      } else {
        auto it = store_multiset.find(row_hash(row));
        if (it == store_multiset.end() || it->second == 0) ++missing;
        else --it->second;
      }
    }
    while (pg::Result r{PQgetResult(conn.get())}) {}
    if (keyed) {
      extra = (long long)store_rows.size();
      for (const auto& [k, v] : store_rows)
        if (examples.size() < 5) examples.push_back("extra " + v.second);
    } else {
      for (const auto& [h, n] : store_multiset) extra += n;
    }
    bool equal = missing == 0 && extra == 0 && different == 0;
    all_equal = all_equal && equal;
    std::printf("%-40s %s", t.qualified().c_str(), equal ? "equal" : "DIFFERENT");
    if (!equal) {
      std::printf(" (%lld missing, %lld extra, %lld different)", missing, extra, different);
      for (const auto& e : examples) std::printf("; %s", e.c_str());
    }
    std::printf("\n");
  }
  conn.exec("COMMIT");
  if (log) log(LogLevel::kInfo, all_equal ? "all tables equal" : "the store differs from the source");
  return all_equal ? 0 : 9;
}

int run_drop(const DropOptions& o, const LogSink& log) {
  StoreState st;
  {
    auto store = Store::open(o.store, /*must_exist=*/true);
    st = store->state();
  }
  pg::Connection conn = pg::Connection::open(o.source);
  if (!st.slot.empty()) {
    bool active = false;
    if (pg::slot_exists(conn, st.slot, &active)) {
      if (active)
        throw Error(ErrorCategory::kSourceState,
                    "slot " + st.slot + " is in use (a pgseed sync is running?); stop it first");
      pg::drop_slot(conn, st.slot, 0);
      if (log) log(LogLevel::kInfo, "dropped slot " + st.slot);
    } else if (log) {
      log(LogLevel::kWarning, "slot " + st.slot + " does not exist on the source");
    }
  }
  if (st.created_publication && pg::publication_exists(conn, st.publication)) {
    conn.exec("DROP PUBLICATION " + quote_ident(st.publication), "dropping the publication");
    if (log) log(LogLevel::kInfo, "dropped publication " + st.publication);
  }
  if (o.delete_store) {
    StoreUri u = StoreUri::parse(o.store);
    std::error_code ec;
    std::filesystem::remove_all(u.path, ec);
    if (u.scheme == "sqlite") {
      std::filesystem::remove(u.path + "-wal", ec);
      std::filesystem::remove(u.path + "-shm", ec);
    }
    if (log) log(LogLevel::kInfo, "deleted store " + o.store);
  }
  return 0;
}

}  // namespace pgseed::cli
