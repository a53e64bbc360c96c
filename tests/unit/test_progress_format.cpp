// The progress texts of the CLI (src/cli/progress_format.h): durations, widths, copy lines
// and summary, --follow lines (rate, lag, quiet when idle), systemd's STATUS= text.
#include <gtest/gtest.h>

#include "cli/progress_format.h"

namespace pgseed::cli {
namespace {

Progress copy_progress(double elapsed, std::vector<Progress::Table> tables) {
  Progress p;
  p.phase = Progress::Phase::kCopy;
  p.elapsed_seconds = elapsed;
  p.estimated_rows = 0;
  for (const auto& t : tables) {
    p.rows += t.rows;
    p.bytes += t.bytes;
    p.estimated_rows += t.estimated_rows;
  }
  p.tables = std::move(tables);
  return p;
}

Progress::Table table(std::string name, uint64_t rows, uint64_t bytes, int64_t estimated, bool done) {
  Progress::Table t;
  t.name = std::move(name);
  t.rows = rows;
  t.bytes = bytes;
  t.estimated_rows = estimated;
  t.done = done;
  return t;
}

Progress stream_progress(uint64_t transactions, const char* lsn, int64_t lag_bytes, double lag_seconds) {
  Progress p;
  p.phase = Progress::Phase::kStream;
  p.transactions = transactions;
  p.applied_lsn = Lsn::parse(lsn);
  p.lag_bytes = lag_bytes;
  p.lag_seconds = lag_seconds;
  p.elapsed_seconds = 1;
  return p;
}

TEST(ProgressFormat, Hms) {
  EXPECT_EQ(format_hms(0), "0:00:00");
  EXPECT_EQ(format_hms(65), "0:01:05");
  EXPECT_EQ(format_hms(3599.6), "1:00:00");
  EXPECT_EQ(format_hms(27 * 3600 + 3 * 60 + 9), "27:03:09");
  EXPECT_EQ(format_hms(-1), "?");
  EXPECT_EQ(format_hms(1.0 / 0.0), "?");
}

TEST(ProgressFormat, Mb) {
  EXPECT_EQ(format_mb(0), "0.0 MB");
  EXPECT_EQ(format_mb(12'345'678), "12.3 MB");
}

TEST(ProgressFormat, ClipToWidth) {
  EXPECT_EQ(clip_to_width("copy: 42%, 1000 rows", 0), "copy: 42%, 1000 rows");  // no terminal
  EXPECT_EQ(clip_to_width("copy: 42%, 1000 rows", 9), "copy: 42%");
  EXPECT_EQ(clip_to_width("short", 80), "short");
  // A UTF-8 character is one column and is never cut in half.
  EXPECT_EQ(clip_to_width("t\xc3\xa4t\xc3\xa4", 2), "t\xc3\xa4");
  EXPECT_EQ(clip_to_width("\xe2\x82\xac\xe2\x82\xac", 1), "\xe2\x82\xac");
}

TEST(ProgressFormat, CopyLine) {
  Progress p = copy_progress(10, {table("public.a", 250, 5'000'000, 1000, false),
                                  table("public.b", 250, 5'000'000, 250, true)});
  CopyFigures f = copy_figures(p);
  EXPECT_DOUBLE_EQ(f.fraction, 0.4);
  EXPECT_DOUBLE_EQ(f.eta_seconds, 15);
  EXPECT_DOUBLE_EQ(f.bytes_per_second, 1e6);
  EXPECT_EQ(copy_line(p),
            "copy: 40%, ETA 0:00:15, elapsed 0:00:10, 10.0 MB at 1.0 MB/s, 500 rows at 50/s, 1/2 tables done");
  EXPECT_EQ(copy_json_fields(p),
            ",\"phase\":\"copy\",\"rows\":500,\"bytes\":10000000,\"tables_done\":1,\"tables\":2,"
            "\"rows_per_second\":50,\"bytes_per_second\":1000000,\"percent\":40.0,\"eta_seconds\":15,"
            "\"elapsed_seconds\":10.0");

  // No estimate at all: percent and ETA unknown.
  Progress unknown = copy_progress(10, {table("public.a", 5, 100, -1, false)});
  unknown.estimated_rows = -1;
  EXPECT_EQ(copy_line(unknown).find("copy: ?, ETA ?, "), 0u) << copy_line(unknown);

  // The estimate is passed but a table is not done: no confident ETA; all done: 100%, 0.
  Progress over = copy_progress(10, {table("public.a", 2000, 1, 1000, false)});
  EXPECT_EQ(copy_line(over).find("copy: 100%, ETA ?, "), 0u) << copy_line(over);
  Progress done = copy_progress(3725, {table("public.a", 900, 1, 1000, true)});
  EXPECT_EQ(copy_line(done).find("copy: 100%, ETA 0:00:00, elapsed 1:02:05, "), 0u) << copy_line(done);
}

TEST(ProgressFormat, SummaryWithTheLargestTables) {
  CopyTimings timings;
  auto at = [](double elapsed, uint64_t a_rows, bool a_done, uint64_t b_rows, bool b_done, uint64_t c_rows,
               bool c_done) {
    return copy_progress(elapsed, {table("public.small", a_rows, a_rows * 10, 10, a_done),
                                   table("public.big", b_rows, b_rows * 100, 1000, b_done),
                                   table("public.\"Mid\"", c_rows, c_rows * 50, 100, c_done)});
  };
  timings.observe(at(1, 10, true, 100, false, 0, false));
  timings.observe(at(2, 10, true, 500, false, 0, false));
  timings.observe(at(3, 10, true, 1000, true, 40, false));
  Progress last = at(5, 10, true, 1000, true, 100, true);
  timings.observe(last);
  EXPECT_DOUBLE_EQ(timings.seconds(0), 1);  // started before the first report
  EXPECT_DOUBLE_EQ(timings.seconds(1), 3);
  EXPECT_DOUBLE_EQ(timings.seconds(2), 3);  // first rows seen at 3: began after 2

  auto lines = copy_summary(last, timings, 2);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].text, "copy summary: 3 tables, 1110 rows, 0.1 MB in 0:00:05 (0.0 MB/s, 222 rows/s)");
  EXPECT_EQ(lines[1].text, "copy summary: public.big: 1000 rows, 0.1 MB, 3 s");
  EXPECT_EQ(lines[2].text, "copy summary: public.\"Mid\": 100 rows, 0.0 MB, 3 s");
  EXPECT_EQ(lines[2].json_fields,
            ",\"phase\":\"copy\",\"table\":\"public.\\\"Mid\\\"\",\"rows\":100,\"bytes\":5000,\"seconds\":3.0");

  // Another copy (elapsed time starts again) is timed afresh.
  timings.observe(copy_progress(0.5, {table("public.x", 0, 0, 1, false)}));
  EXPECT_EQ(timings.seconds(0), -1);
}

TEST(ProgressFormat, StreamLinesRateAndLag) {
  StreamReporter r;
  // The first report prints at once, its rate over the phase so far.
  Progress p = stream_progress(20, "0/100", 0, 0);
  p.elapsed_seconds = 2;
  auto l = r.observe(p, 1000);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->text, "stream: 20 transactions applied, 10.0/s, at 0/100, lag 0.0 s (0 bytes)");
  // Busy: a line every 10 s, the rate over the time since the previous line.
  EXPECT_FALSE(r.observe(stream_progress(30, "0/200", 512, 0.25), 1005));
  l = r.observe(stream_progress(70, "0/300", 512, 0.25), 1010);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->text, "stream: 70 transactions applied, 5.0/s, at 0/300, lag 0.2 s (512 bytes)");
  EXPECT_NE(l->json_fields.find("\"transactions_per_second\":5.0,\"lsn\":\"0/300\",\"lag_bytes\":512,"
                                "\"lag_seconds\":0.250"),
            std::string::npos)
      << l->json_fields;

  // Idle, nothing changed: no line, however long.
  EXPECT_FALSE(r.observe(stream_progress(70, "0/300", 512, 0.25), 1030));
  EXPECT_FALSE(r.observe(stream_progress(70, "0/300", 512, 0.25), 5000));
  // Idle but the position moved (WAL of other tables confirmed): once a minute at most.
  l = r.observe(stream_progress(70, "0/400", 0, 0), 5001);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->text, "stream: 70 transactions applied, idle, at 0/400, lag 0.0 s (0 bytes)");
  EXPECT_FALSE(r.observe(stream_progress(70, "0/500", 0, 0), 5030));
  EXPECT_TRUE(r.observe(stream_progress(70, "0/500", 0, 0), 5061));
  // Busy again: the rate counts from the last line.
  EXPECT_FALSE(r.observe(stream_progress(71, "0/600", 0, 0), 5065));
  l = r.observe(stream_progress(100, "0/700", -1, -1), 5071);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->text, "stream: 100 transactions applied, 3.0/s, at 0/700, lag ?");
  EXPECT_NE(l->json_fields.find("\"lag_bytes\":null,\"lag_seconds\":null"), std::string::npos);
}

TEST(ProgressFormat, ServiceStatus) {
  Progress c = copy_progress(10, {table("public.a", 250, 5'000'000, 1000, false),
                                  table("public.b", 250, 5'000'000, 250, true)});
  EXPECT_EQ(service_status(c), "copying: 40%, 1/2 tables, 10.0 MB, ETA 0:00:15");
  EXPECT_EQ(service_status(stream_progress(12, "1/A0", 64, 1.5)),
            "streaming at 1/A0, lag 1.5 s (64 bytes), 12 transactions");
}

}  // namespace
}  // namespace pgseed::cli
