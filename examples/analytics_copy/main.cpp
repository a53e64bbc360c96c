// analytics_copy — a consistent local copy of some tables in a SQLite file, then an analytic
// query on it with the plain sqlite3 C API: the heavy query runs on your machine, not on
// the production database.
//
//   analytics_copy --source CONNINFO --store PATH [--tables LIST] [--query SQL]
//
// The first run copies the tables under one snapshot (a consistent picture of them all);
// later runs with the same PATH only apply what changed since, in seconds. LIST is as SQL
// writes names, comma-separated (default "public.products, public.order_items", as in
// scripts/sample_schema.sql); it is used on the first run, which creates a publication for
// those tables. The result goes to stdout: a header line, then one line per row, fields
// separated by tabs, NULL as "NULL". Progress and the replica's position go to stderr.
//
// In the SQLite file, a table of schema public keeps its name ("products"); one of another
// schema is named "schema.table" (quote it: "sales.orders"). Integers are INTEGER, floats
// and numeric(p,s) up to 15 digits REAL (compared and sorted as numbers; sums of money are
// floating point: format them with printf('%.2f', ...)); timestamptz is TEXT in UTC without
// "+00" (date(), datetime() and '2026-01-01' comparisons work); other numerics, json, ...
// are TEXT in PostgreSQL's text form.
#include <sqlite3.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include <pgseed/error.h>
#include <pgseed/replica.h>
#include <pgseed/sync.h>

namespace {

// Top products by revenue.
constexpr const char* kDefaultQuery = R"(
SELECT p.name AS product,
       count(*) AS lines,
       sum(i.quantity) AS units,
       printf('%.2f', sum(i.quantity * i.unit_price)) AS revenue
FROM order_items i JOIN products p ON p.id = i.product_id
GROUP BY p.id, p.name
ORDER BY sum(i.quantity * i.unit_price) DESC, p.id
LIMIT 10)";

struct Args {
  std::string source, store;
  std::string tables = "public.products, public.order_items";
  std::string query = kDefaultQuery;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
    std::string value = argv[++i];
    if (flag == "--source") a.source = value;
    else if (flag == "--store") a.store = value;
    else if (flag == "--tables") a.tables = value;
    else if (flag == "--query") a.query = value;
    else throw std::invalid_argument("unknown option " + flag);
  }
  if (a.source.empty() || a.store.empty())
    throw std::invalid_argument(
        "usage: analytics_copy --source CONNINFO --store PATH [--tables LIST] [--query SQL]");
  return a;
}

struct SqliteClose {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct SqliteFinalize {
  void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
};

// Runs `sql` on the SQLite file at `path` and prints its result, tab-separated.
void print_query(const std::string& path, const std::string& sql) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, SqliteClose> db(raw);  // closed even when the open failed
  if (rc != SQLITE_OK) throw std::runtime_error("cannot open " + path + ": " + sqlite3_errmsg(raw));

  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
    throw std::runtime_error(std::string("query: ") + sqlite3_errmsg(db.get()));
  std::unique_ptr<sqlite3_stmt, SqliteFinalize> stmt(st);

  int columns = sqlite3_column_count(st);
  std::string line;
  for (int c = 0; c < columns; ++c) line += (c ? "\t" : "") + std::string(sqlite3_column_name(st, c));
  std::cout << line << '\n';
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    line.clear();
    for (int c = 0; c < columns; ++c) {
      if (c) line += '\t';
      const unsigned char* text = sqlite3_column_text(st, c);
      line += text ? reinterpret_cast<const char*>(text) : "NULL";
    }
    std::cout << line << '\n';
  }
  if (rc != SQLITE_DONE) throw std::runtime_error(std::string("query: ") + sqlite3_errmsg(db.get()));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args args = parse_args(argc, argv);

    // One-shot sync: returns once everything the source had committed when it started is
    // in the file. Tables named with --tables are checked and quoted by parse_table_list.
    pgseed::SyncOptions options;
    options.source = args.source;
    options.store = "sqlite:" + args.store;
    options.tables = pgseed::parse_table_list(args.tables);
    options.log = [](pgseed::LogLevel level, std::string_view message) {
      if (level >= pgseed::LogLevel::kInfo) std::cerr << "pgseed: " + std::string(message) + "\n";
    };
    pgseed::Sync(options).run();

    // Where the copy stands: everything the source committed before this LSN is in it.
    pgseed::ReplicaState state = pgseed::Replica::open(options.store)->state();
    std::cerr << "replica " << args.store << " at " << state.applied_lsn.str()
              << (state.last_commit_time.empty() ? "" : ", last change " + state.last_commit_time)
              << "\n";

    // The replica is an ordinary SQLite file: query it with any SQLite client.
    print_query(args.store, args.query);
    return 0;
  } catch (const pgseed::Error& e) {
    std::cerr << "analytics_copy: " << pgseed::category_name(e.category()) << " error: " << e.what()
              << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "analytics_copy: " << e.what() << "\n";
    return 2;
  }
}
