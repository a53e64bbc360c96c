// What the store tests share: a temporary directory, table definitions, and rows written
// and read as optional texts (nullopt: NULL).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/pg_type.h"
#include "model/row.h"
#include "model/table_def.h"
#include "store/store.h"

namespace pgseed::test_support {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "pgseed_store_XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

using Values = std::vector<std::optional<std::string>>;
inline const std::nullopt_t N = std::nullopt;

inline ColumnDef col(std::string name, uint32_t oid, int key_position = 0) {
  ColumnDef c;
  c.name = std::move(name);
  c.type_oid = oid;
  c.base_type_oid = oid;
  c.type_name = "t" + std::to_string(oid);
  c.storage = storage_class_for_type(oid);
  c.key_position = key_position;
  return c;
}

inline TableDef items_def() {
  TableDef d;
  d.source_oid = 16400;
  d.schema = "public";
  d.name = "items";
  d.columns = {col("id", kInt4Oid, 1),   col("name", 25),        col("price", 1700),
               col("ratio", kFloat8Oid), col("data", kByteaOid), col("ok", kBoolOid)};
  return d;
}

inline TableDef bag_def() {  // no key: REPLICA IDENTITY FULL
  TableDef d;
  d.source_oid = 16500;
  d.schema = "public";
  d.name = "bag";
  d.columns = {col("a", kInt4Oid), col("b", 25)};
  return d;
}

// Datums view their text: for use within one full expression only.
inline Row datums(const Values& v) {
  Row r;
  for (const auto& x : v) r.push_back(x ? Datum::of(*x) : Datum::null());
  return r;
}

// A row whose Datums stay valid as long as it lives (for rows kept in a variable).
struct OwnedRow {
  Values values;
  Row row;
  explicit OwnedRow(Values v) : values(std::move(v)), row(datums(values)) {}
  OwnedRow(const OwnedRow&) = delete;
  OwnedRow& operator=(const OwnedRow&) = delete;
};

inline std::vector<Values> scan(const StoreReader& s, const TableDef& def) {
  std::vector<Values> out;
  s.scan(def, [&](const Row& row) {
    Values v;
    for (const Datum& d : row)
      v.push_back(d.is_null() ? std::nullopt : std::optional<std::string>(d.text));
    out.push_back(std::move(v));
  });
  return out;
}

inline RowBatch batch_of(const std::vector<Values>& rows) {
  RowBatch batch;
  for (const auto& r : rows) {
    for (const auto& v : r) v ? batch.add_text(*v) : batch.add_null();
    batch.end_row();
  }
  return batch;
}

inline void insert(Store& s, const TableDef& def, const std::vector<Values>& rows) {
  s.insert_batch(def, batch_of(rows));
}

// The child re-runs the test body (death test style "threadsafe"); it finds the directory
// through the environment.
inline std::string crash_dir(const char* env, std::optional<TempDir>& tmp) {
  if (const char* d = getenv(env)) return d;
  tmp.emplace();
  std::string dir = tmp->sub("store");
  setenv(env, dir.c_str(), 1);
  return dir;
}

inline Values item(int id, const std::string& name, std::optional<std::string> price = N) {
  return {std::to_string(id), name, std::move(price), N, N, "t"};
}

inline const TableDef& find_table(const std::vector<TableDef>& tables, const std::string& name) {
  for (const auto& t : tables)
    if (t.name == name) return t;
  throw std::runtime_error("no table " + name);
}

inline StoreState streaming_at(uint64_t lsn) {
  StoreState st;
  st.phase = StoreState::Phase::kStreaming;
  st.slot = "slot";
  st.applied_lsn = Lsn(lsn);
  return st;
}

// The peak memory a store may take while it copies or applies a million rows (DESIGN:
// well under 100 MB whatever the table size).
inline constexpr long kMaxRssKb = 100 * 1024;

// In a child process that wrote a million rows (`rows` as counted back): records its peak
// RSS in DIR.rss, prints it, and exits 0 when all rows are there and the peak is below
// kMaxRssKb.
[[noreturn]] inline void exit_reporting_peak_rss(const std::string& dir, uint64_t rows) {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  std::ofstream(dir + ".rss") << ru.ru_maxrss;
  fprintf(stderr, "rows %llu, peak RSS %ld kB\n", static_cast<unsigned long long>(rows),
          ru.ru_maxrss);
  _exit(rows == 1000000 && ru.ru_maxrss < kMaxRssKb ? 0 : 1);
}

// Runs `child(dir)` (which ends in exit_reporting_peak_rss) in a death-test child that finds
// its directory through the environment variable `env`, then checks the peak RSS it
// recorded.
template <class Child>
void expect_million_rows_within_memory(const char* env, const char* what, Child child) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::optional<TempDir> tmp;
  std::string dir = crash_dir(env, tmp);
  EXPECT_EXIT(child(dir), ::testing::ExitedWithCode(0), "rows 1000000, peak RSS");
  unsetenv(env);
  long rss_kb = 0;
  std::ifstream(dir + ".rss") >> rss_kb;
  std::printf("%s: peak RSS %ld kB\n", what, rss_kb);
  EXPECT_GT(rss_kb, 0);
  EXPECT_LT(rss_kb, kMaxRssKb);
}

// A fresh store of `kind` ("sqlite" or "rocksdb") at `path` (a SQLite file gets ".db").
inline std::string store_uri(const std::string& kind, const std::string& path) {
  return kind == "rocksdb" ? "rocksdb:" + path : "sqlite:" + path + ".db";
}

}  // namespace pgseed::test_support
