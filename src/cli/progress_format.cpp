#include "cli/progress_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace pgseed::cli {

namespace {

std::string fixed(double v, int decimals) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

std::string json_name(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

}  // namespace

std::string format_hms(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = uint64_t(std::llround(seconds));
  char b[48];
  std::snprintf(b, sizeof b, "%llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
  return b;
}

std::string format_mb(uint64_t bytes) { return fixed(double(bytes) / 1e6, 1) + " MB"; }

std::string clip_to_width(std::string_view line, size_t width) {
  if (width == 0) return std::string(line);
  size_t columns = 0, i = 0;
  while (i < line.size()) {
    // A UTF-8 sequence: its lead byte and the continuation bytes (10xxxxxx) after it.
    size_t next = i + 1;
    while (next < line.size() && (static_cast<unsigned char>(line[next]) & 0xC0) == 0x80) ++next;
    if (columns + 1 > width) break;
    ++columns;
    i = next;
  }
  return std::string(line.substr(0, i));
}

CopyFigures copy_figures(const Progress& p) {
  CopyFigures f;
  f.all_done = !p.tables.empty();
  for (const auto& t : p.tables) {
    f.tables_done += t.done;
    f.all_done = f.all_done && t.done;
  }
  if (p.elapsed_seconds > 0) {
    f.rows_per_second = double(p.rows) / p.elapsed_seconds;
    f.bytes_per_second = double(p.bytes) / p.elapsed_seconds;
  }
  // Rows against the catalog's row estimate; without one (never analyzed), COPY bytes
  // against the heap size, which are close for most tables.
  if (p.estimated_rows > 0) f.fraction = std::min(1.0, double(p.rows) / double(p.estimated_rows));
  else if (p.estimated_bytes > 0) f.fraction = std::min(1.0, double(p.bytes) / double(p.estimated_bytes));
  if (f.all_done) {
    f.fraction = 1;
    f.eta_seconds = 0;
  } else if (f.fraction > 0) {
    // The estimate said done but tables are not: unknown rather than a confident 0.
    f.eta_seconds = f.fraction >= 1 ? -1 : p.elapsed_seconds * (1 - f.fraction) / f.fraction;
  }
  return f;
}

std::string copy_line(const Progress& p) {
  CopyFigures f = copy_figures(p);
  std::string pct = f.fraction >= 0 ? fixed(f.fraction * 100, 0) + "%" : "?";
  // The figures that matter most first: a narrow terminal clips the end of the line.
  return "copy: " + pct + ", ETA " + format_hms(f.eta_seconds) + ", elapsed " +
         format_hms(p.elapsed_seconds) + ", " + format_mb(p.bytes) + " at " +
         fixed(f.bytes_per_second / 1e6, 1) + " MB/s, " + std::to_string(p.rows) + " rows at " +
         fixed(f.rows_per_second, 0) + "/s, " + std::to_string(f.tables_done) + "/" +
         std::to_string(p.tables.size()) + " tables done";
}

std::string copy_json_fields(const Progress& p) {
  CopyFigures f = copy_figures(p);
  return ",\"phase\":\"copy\",\"rows\":" + std::to_string(p.rows) + ",\"bytes\":" +
         std::to_string(p.bytes) + ",\"tables_done\":" + std::to_string(f.tables_done) +
         ",\"tables\":" + std::to_string(p.tables.size()) + ",\"rows_per_second\":" +
         fixed(f.rows_per_second, 0) + ",\"bytes_per_second\":" + fixed(f.bytes_per_second, 0) +
         ",\"percent\":" + (f.fraction >= 0 ? fixed(f.fraction * 100, 1) : "null") +
         ",\"eta_seconds\":" + (f.eta_seconds >= 0 ? fixed(f.eta_seconds, 0) : "null") +
         ",\"elapsed_seconds\":" + fixed(p.elapsed_seconds, 1);
}

void CopyTimings::observe(const Progress& p) {
  bool same = p.tables.size() == names_.size() && p.elapsed_seconds >= last_elapsed_;
  for (size_t i = 0; same && i < names_.size(); ++i) same = names_[i] == p.tables[i].name;
  if (!same) {
    names_.clear();
    for (const auto& t : p.tables) names_.push_back(t.name);
    start_.assign(names_.size(), -1);
    end_.assign(names_.size(), -1);
    last_elapsed_ = 0;
  }
  for (size_t i = 0; i < p.tables.size(); ++i) {
    const auto& t = p.tables[i];
    if (start_[i] < 0 && (t.rows > 0 || t.done)) start_[i] = last_elapsed_;
    if (end_[i] < 0 && t.done) end_[i] = p.elapsed_seconds;
  }
  last_elapsed_ = p.elapsed_seconds;
}

double CopyTimings::seconds(size_t i) const {
  if (i >= end_.size() || end_[i] < 0 || start_[i] < 0) return -1;
  return end_[i] - start_[i];
}

std::vector<SummaryLine> copy_summary(const Progress& p, const CopyTimings& timings, size_t top) {
  std::vector<SummaryLine> out;
  CopyFigures f = copy_figures(p);
  SummaryLine total;
  total.text = "copy summary: " + std::to_string(p.tables.size()) + " tables, " +
               std::to_string(p.rows) + " rows, " + format_mb(p.bytes) + " in " +
               format_hms(p.elapsed_seconds) + " (" + fixed(f.bytes_per_second / 1e6, 1) +
               " MB/s, " + fixed(f.rows_per_second, 0) + " rows/s)";
  total.json_fields = ",\"phase\":\"copy\",\"tables\":" + std::to_string(p.tables.size()) +
                      ",\"rows\":" + std::to_string(p.rows) + ",\"bytes\":" + std::to_string(p.bytes) +
                      ",\"seconds\":" + fixed(p.elapsed_seconds, 1) + ",\"bytes_per_second\":" +
                      fixed(f.bytes_per_second, 0) + ",\"rows_per_second\":" + fixed(f.rows_per_second, 0);
  out.push_back(std::move(total));

  std::vector<size_t> order(p.tables.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return p.tables[a].bytes > p.tables[b].bytes;
  });
  if (order.size() > top) order.resize(top);
  for (size_t i : order) {
    const auto& t = p.tables[i];
    double s = timings.seconds(i);
    SummaryLine l;
    l.text = "copy summary: " + t.name + ": " + std::to_string(t.rows) + " rows, " + format_mb(t.bytes) +
             ", " + (s >= 0 ? fixed(s, 0) + " s" : std::string("? s"));
    l.json_fields = ",\"phase\":\"copy\",\"table\":" + json_name(t.name) + ",\"rows\":" +
                    std::to_string(t.rows) + ",\"bytes\":" + std::to_string(t.bytes) +
                    ",\"seconds\":" + (s >= 0 ? fixed(s, 1) : "null");
    out.push_back(std::move(l));
  }
  return out;
}

std::string format_lag(const Progress& p) {
  if (p.lag_seconds >= 0 && p.lag_bytes >= 0)
    return "lag " + fixed(p.lag_seconds, 1) + " s (" + std::to_string(p.lag_bytes) + " bytes)";
  if (p.lag_seconds >= 0) return "lag " + fixed(p.lag_seconds, 1) + " s";
  if (p.lag_bytes >= 0) return "lag " + std::to_string(p.lag_bytes) + " bytes";
  return "lag ?";
}

std::optional<StreamReporter::Line> StreamReporter::observe(const Progress& p, double now) {
  // Transactions count up over a run; a smaller count is another run's: start afresh.
  if (p.transactions < last_transactions_) printed_ = false;
  uint64_t applied = p.transactions - (printed_ ? last_transactions_ : 0);
  double rate;
  if (!printed_) {
    rate = p.elapsed_seconds > 0 ? double(p.transactions) / p.elapsed_seconds : 0;
  } else {
    double dt = now - last_time_;
    if (applied > 0) {
      if (dt < kActiveInterval) return std::nullopt;
    } else {
      bool changed = p.applied_lsn != last_lsn_ || p.lag_bytes != last_lag_bytes_;
      if (!changed || dt < kIdleInterval) return std::nullopt;
    }
    rate = dt > 0 ? double(applied) / dt : 0;
  }
  printed_ = true;
  last_time_ = now;
  last_transactions_ = p.transactions;
  last_lsn_ = p.applied_lsn;
  last_lag_bytes_ = p.lag_bytes;

  Line l;
  l.text = "stream: " + std::to_string(p.transactions) + " transactions applied, " +
           (applied > 0 ? fixed(rate, 1) + "/s" : std::string("idle")) + ", at " +
           p.applied_lsn.str() + ", " + format_lag(p);
  l.json_fields = ",\"phase\":\"stream\",\"transactions\":" + std::to_string(p.transactions) +
                  ",\"transactions_per_second\":" + fixed(rate, 1) + ",\"lsn\":\"" +
                  p.applied_lsn.str() + "\",\"lag_bytes\":" +
                  (p.lag_bytes < 0 ? std::string("null") : std::to_string(p.lag_bytes)) +
                  ",\"lag_seconds\":" + (p.lag_seconds < 0 ? std::string("null") : fixed(p.lag_seconds, 3)) +
                  ",\"elapsed_seconds\":" + fixed(p.elapsed_seconds, 1);
  return l;
}

std::string service_status(const Progress& p) {
  if (p.phase == Progress::Phase::kCopy) {
    CopyFigures f = copy_figures(p);
    std::string pct = f.fraction >= 0 ? fixed(f.fraction * 100, 0) + "%" : "?";
    return "copying: " + pct + ", " + std::to_string(f.tables_done) + "/" +
           std::to_string(p.tables.size()) + " tables, " + format_mb(p.bytes) + ", ETA " +
           format_hms(f.eta_seconds);
  }
  return "streaming at " + p.applied_lsn.str() + ", " + format_lag(p) + ", " +
         std::to_string(p.transactions) + " transactions";
}

}  // namespace pgseed::cli
