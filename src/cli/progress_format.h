// The text of sync progress as the CLI shows it: copy lines, the end-of-copy summary,
// --follow lines and systemd's STATUS= text. Pure: no clock, no terminal, no I/O (the
// caller passes the time and the width), so that tests/unit/test_progress_format.cpp can
// check every figure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgseed/sync.h"

namespace pgseed::cli {

// A duration as h:mm:ss ("0:01:05", "27:00:00": hours are not wrapped); "?" when negative
// or not finite (unknown).
std::string format_hms(double seconds);

// Bytes as decimal megabytes with one decimal: "12.3 MB".
std::string format_mb(uint64_t bytes);

// `line` cut to at most `width` terminal columns; a UTF-8 sequence counts as one column
// and is never split. width 0: no clipping (not a terminal).
std::string clip_to_width(std::string_view line, size_t width);

// Figures of a copy in progress, derived from one Progress.
struct CopyFigures {
  double fraction = -1;     // 0..1 from the catalog's estimates (rows, else bytes); -1 unknown
  double eta_seconds = -1;  // -1 unknown; 0 when every table is done
  double rows_per_second = 0;
  double bytes_per_second = 0;
  size_t tables_done = 0;
  bool all_done = false;    // every table copied (false when there are none)
};
CopyFigures copy_figures(const Progress& p);

// "copy: 42%, ETA 0:00:17, elapsed 0:00:12, 45.6 MB at 12.3 MB/s, 123456 rows at 4567/s,
// 3/10 tables done" (percent and ETA "?" when unknown; what matters most comes first, as
// a narrow terminal clips the end).
std::string copy_line(const Progress& p);
// The same figures as JSON members (",\"phase\":\"copy\",\"rows\":...") for
// --log-format json.
std::string copy_json_fields(const Progress& p);

// How long each table's copy took, as seen from the progress callbacks: Progress carries
// no per-table clock, so a table's time runs from the last report before its first rows
// to the first report that shows it done (to about a report's interval, one second).
// A new copy (another table list, or elapsed time going back) starts afresh.
class CopyTimings {
 public:
  void observe(const Progress& p);
  // Seconds table `i` (index into Progress::tables) took; -1 while unknown.
  double seconds(size_t i) const;

 private:
  std::vector<std::string> names_;
  std::vector<double> start_, end_;
  double last_elapsed_ = 0;
};

// One line of the end-of-copy summary, with its figures as JSON members.
struct SummaryLine {
  std::string text;
  std::string json_fields;
};
// The summary of a finished copy: the totals ("copy summary: 3 tables, 300000 rows,
// 98.4 MB in 0:00:05 (19.7 MB/s, 60000 rows/s)"), then one line for each of the `top`
// largest tables (by bytes): rows, MB and seconds.
std::vector<SummaryLine> copy_summary(const Progress& p, const CopyTimings& timings, size_t top = 5);

// --follow (and one-shot streaming) lines: when to print one and what it says. A line
// every kActiveInterval seconds while transactions are applied, the rate being the
// transactions applied since the previous line over the time since it; while idle
// (nothing applied since the previous line), a line only when the position or the lag
// changed, and at most one every kIdleInterval seconds. The first report always prints.
class StreamReporter {
 public:
  static constexpr double kActiveInterval = 10;
  static constexpr double kIdleInterval = 60;
  struct Line {
    std::string text;         // "stream: 1234 transactions applied, 12.0/s, at 0/3A2B4C8, lag 0.2 s (512 bytes)"
    std::string json_fields;  // ",\"phase\":\"stream\",..."
  };
  // `now`: seconds on a monotonic clock (the caller's). Returns the line to print, if any.
  std::optional<Line> observe(const Progress& p, double now);

 private:
  bool printed_ = false;
  double last_time_ = 0;
  uint64_t last_transactions_ = 0;
  Lsn last_lsn_;
  int64_t last_lag_bytes_ = -1;
};

// "lag 0.2 s (512 bytes)", "lag 512 bytes", "lag ?".
std::string format_lag(const Progress& p);

// systemd's STATUS= text: short, one line. "copying: 42%, 3/10 tables, 45.6 MB,
// ETA 0:00:17" or "streaming at 0/3A2B4C8, lag 0.2 s (512 bytes), 1234 transactions".
std::string service_status(const Progress& p);

}  // namespace pgseed::cli
