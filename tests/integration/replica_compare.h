// Comparing a whole replica with its source: the store holds exactly the tables that
// publication p publishes, each equal to the source's COPY of its published columns, and
// verify says equal. Shared by the schema-change and DDL torture tests.
#pragma once

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "harness.h"
#include "stream_support.h"

namespace pgseed::test {

// The source's published tables, as SQL names them.
inline std::set<std::string> published(Db& db) {
  std::set<std::string> out;
  std::string list = db.value(
      "SELECT coalesce(string_agg(format('%I.%I', schemaname, tablename), chr(10)), '') "
      "FROM pg_publication_tables WHERE pubname = 'p'");
  std::istringstream in(list);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.insert(line);
  return out;
}

// The store's tables, from `dump` (each preceded by a "-- name" line).
inline std::set<std::string> stored(const std::string& store) {
  RunResult r = run_pgseed({"dump", "--store", store});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("-- ", 0) == 0) out.insert(line.substr(3));
  return out;
}

// The columns publication p publishes of `table`: its attnames, less generated columns
// before 18 (15 lists them although it never publishes them; 18 lists them only when
// publish_generated_columns or a column list says so).
inline std::string published_columns(Db& db, const std::string& table) {
  return db.value(
      "SELECT coalesce(string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum), '') "
      "FROM pg_attribute a JOIN pg_publication_tables pt ON pt.pubname = 'p' "
      "  AND format('%I.%I', pt.schemaname, pt.tablename) = " + quote_literal(table) + " "
      "WHERE a.attrelid = " + quote_literal(table) + "::regclass AND a.attnum > 0 "
      "AND NOT a.attisdropped AND a.attname = ANY (pt.attnames) "
      "AND (a.attgenerated = '' OR current_setting('server_version_num')::int >= 180000)");
}

inline void expect_replica_equal(TestDatabase& src, const std::string& store) {
  std::set<std::string> want = published(src.db());
  EXPECT_EQ(stored(store), want);
  for (const auto& t : want) expect_dump_equals(src, store, t, "SELECT " + published_columns(src.db(), t) + " FROM " + t);
  RunResult v = run_pgseed({"verify", "--source", src.conninfo(), "--store", store});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}


}  // namespace pgseed::test
