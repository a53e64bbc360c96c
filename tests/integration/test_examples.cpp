// The examples of examples/, run as a user would run them, against a database of their own.
// Their paths come from tests/CMakeLists.txt (PGSEED_EXAMPLE_*); without them (examples not
// built) these tests fail, saying so.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"
#include "pgseed/replica.h"
#include "store_kinds.h"

extern char** environ;

namespace pgseed::test {
namespace {

using namespace std::chrono_literals;

std::string example_path(const char* name) {
  if (std::string(name).empty()) ADD_FAILURE() << "examples not built (PGSEED_BUILD_EXAMPLES=OFF)";
  return name;
}

#ifndef PGSEED_EXAMPLE_EDGE_CACHE
#define PGSEED_EXAMPLE_EDGE_CACHE ""
#endif
#ifndef PGSEED_EXAMPLE_TEST_FIXTURE
#define PGSEED_EXAMPLE_TEST_FIXTURE ""
#endif
#ifndef PGSEED_EXAMPLE_ANALYTICS_COPY
#define PGSEED_EXAMPLE_ANALYTICS_COPY ""
#endif


std::string fresh_dir() {
  static std::atomic<int> counter{0};
  std::string dir = test_dir() + "/examples-" + std::to_string(counter++);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// An example program run in the background: stdin from a pipe this object holds (or
// /dev/null), stdout and stderr to files in `dir`. Killed (SIGKILL) if still running when
// destroyed.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::string& dir, bool pipe_stdin,
        const std::vector<std::string>& extra_env = {})
      : out_path_(dir + "/stdout"), err_path_(dir + "/stderr") {
    // Everything the child needs is built before fork: after it, only exec.
    std::vector<std::string> argv_s = args, env_s = extra_env;
    for (char** e = environ; *e; ++e) env_s.push_back(*e);
    std::vector<char*> argv, envp;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
    int in[2] = {-1, -1};
    if (pipe_stdin && pipe2(in, O_CLOEXEC) != 0) ADD_FAILURE() << "pipe2 failed";
    int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int null_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(pipe_stdin ? in[0] : null_in, 0);
      dup2(out, 1);
      dup2(err, 2);
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    close(out);
    close(err);
    close(null_in);
    if (pipe_stdin) {
      close(in[0]);
      stdin_ = in[1];
    }
  }
  ~Child() {
    close_stdin();
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  void send_line(const std::string& line) {
    std::string data = line + "\n";
    ASSERT_EQ(write(stdin_, data.data(), data.size()), ssize_t(data.size()));
  }
  void close_stdin() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
  }
  std::string out() const { return read_text(out_path_); }
  std::string err() const { return read_text(err_path_); }

  // True once stdout holds `text`; false when the child ends or `timeout` passes first.
  bool wait_for(const std::string& text, std::chrono::seconds timeout = 30s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (out().find(text) != std::string::npos) return true;
      if (exited()) return out().find(text) != std::string::npos;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  // The exit code, or -1 when the child is still running after `timeout`.
  int wait(std::chrono::seconds timeout = 60s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!exited() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    return exited() ? exit_code_ : -1;
  }

 private:
  bool exited() {
    if (exited_) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
    exited_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }

  std::string out_path_, err_path_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

// A shop like scripts/sample_schema.sql's, small: products, order lines, and a table that
// the examples do not ask for.
void create_shop(Db& db) {
  db.exec(R"(
    CREATE TABLE products (id integer PRIMARY KEY, sku text NOT NULL UNIQUE, name text NOT NULL,
                           price numeric(12,2) NOT NULL);
    CREATE TABLE order_items (order_id bigint, line_no smallint, product_id integer NOT NULL
                              REFERENCES products, quantity integer NOT NULL,
                              unit_price numeric(12,2) NOT NULL, PRIMARY KEY (order_id, line_no));
    CREATE TABLE customers (id bigint PRIMARY KEY, name text);
    INSERT INTO products SELECT i, 'SKU-' || i, 'product ' || i, round(i * 1.37 + 0.49, 2)
      FROM generate_series(1, 40) i;
    INSERT INTO order_items SELECT i / 3 + 1, i % 3 + 1, (i * i) % 37 + 1, i % 7 + 1, 0
      FROM generate_series(0, 1499) i;
    UPDATE order_items o SET unit_price = p.price FROM products p WHERE p.id = o.product_id;
    INSERT INTO customers SELECT i, 'customer ' || i FROM generate_series(1, 10) i;)");
}

// Rows of `sql` on the source, as analytics_copy prints them: tab-separated, NULL as "NULL".
std::vector<std::string> pg_rows(Db& db, const std::string& sql) {
  std::vector<std::string> rows;
  PGresult* r = PQexec(db.get(), sql.c_str());
  if (PQresultStatus(r) != PGRES_TUPLES_OK) ADD_FAILURE() << PQresultErrorMessage(r);
  else
    for (int i = 0; i < PQntuples(r); ++i) {
      std::string line;
      for (int c = 0; c < PQnfields(r); ++c)
        line += (c ? "\t" : "") + std::string(PQgetisnull(r, i, c) ? "NULL" : PQgetvalue(r, i, c));
      rows.push_back(line);
    }
  PQclear(r);
  return rows;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// analytics_copy's default query, in PostgreSQL's words: numeric sums are exact here, and
// round(..., 2)::text prints them as the example's printf('%.2f', ...) does.
constexpr const char* kTopProductsOnPostgres = R"(
  SELECT p.name, count(*), sum(i.quantity), round(sum(i.quantity * i.unit_price), 2)::text
  FROM order_items i JOIN products p ON p.id = i.product_id
  GROUP BY p.id, p.name
  ORDER BY sum(i.quantity * i.unit_price) DESC, p.id
  LIMIT 10)";

TEST(ExampleTest, AnalyticsCopyPrintsTheSourcesAggregate) {
  TestDatabase src;
  create_shop(src.db());
  std::string dir = fresh_dir();
  std::string store = dir + "/analytics.db";
  std::vector<std::string> args = {example_path(PGSEED_EXAMPLE_ANALYTICS_COPY), "--source",
                                   src.conninfo(), "--store", store, "--tables",
                                   "public.products, order_items"};

  auto run_and_compare = [&](const std::string& what) {
    Child c(args, dir, false);
    ASSERT_EQ(c.wait(), 0) << what << ": " << c.err();
    std::vector<std::string> got = lines_of(c.out());
    ASSERT_FALSE(got.empty()) << what;
    EXPECT_EQ(got[0], "product\tlines\tunits\trevenue") << what;
    got.erase(got.begin());
    std::vector<std::string> want = pg_rows(src.db(), kTopProductsOnPostgres);
    EXPECT_EQ(want.size(), 10u);
    EXPECT_EQ(got, want) << what;
    EXPECT_NE(c.err().find("replica " + store + " at "), std::string::npos) << c.err();
  };
  run_and_compare("first run (copy)");

  // Only the tables asked for are in the file.
  std::vector<std::string> names;
  for (const auto& t : Replica::open("sqlite:" + store)->tables()) names.push_back(t.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"public.order_items", "public.products"}));

  // Change the ranking on the source; the second run applies just that, same answer as
  // PostgreSQL again.
  src.db().exec("UPDATE order_items SET quantity = quantity + 40 WHERE product_id = 3;"
                "DELETE FROM order_items WHERE product_id = 36;"
                "UPDATE products SET name = 'renamed' WHERE id = 3;");
  run_and_compare("second run (catch up)");
}

// Both stores: the Replica stays open while the follow sync writes (RocksDB: a secondary).
class EdgeCacheTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EdgeCacheTest, InvalidatesOnSourceChange) {
  TestDatabase src;
  create_shop(src.db());
  std::string dir = fresh_dir();
  std::string store = GetParam() == "sqlite" ? dir + "/cache.db" : "rocksdb:" + dir + "/cache";
  std::vector<std::string> args = {example_path(PGSEED_EXAMPLE_EDGE_CACHE), "--source",
                                   src.conninfo(), "--store", store, "--table", "products"};
  {
    Child c(args, dir, /*pipe_stdin=*/true);
    ASSERT_TRUE(c.wait_for("ready: 40 rows of public.products cached")) << c.out() << c.err();

    // Served from the cache filled at start.
    c.send_line("7");
    ASSERT_TRUE(c.wait_for("get (7): hit 7,SKU-7,product 7,10.08")) << c.out();
    c.send_line("4242");
    ASSERT_TRUE(c.wait_for("get (4242): not found")) << c.out();

    // A change on the source invalidates the entry; the next lookup reads the new row.
    src.db().exec("UPDATE products SET price = 99.99 WHERE id = 7");
    ASSERT_TRUE(c.wait_for("invalidated public.products (7)")) << c.out() << c.err();
    c.send_line("7");
    ASSERT_TRUE(c.wait_for("get (7): loaded 7,SKU-7,product 7,99.99")) << c.out();
    c.send_line("7");
    ASSERT_TRUE(c.wait_for("get (7): hit 7,SKU-7,product 7,99.99")) << c.out();

    // An inserted row: reported, then found; a deleted one: reported, then gone.
    src.db().exec("INSERT INTO products VALUES (4242, 'SKU-4242', 'new', 1.00);"
                  "DELETE FROM order_items WHERE product_id = 8; DELETE FROM products WHERE id = 8");
    ASSERT_TRUE(c.wait_for("invalidated public.products (4242)")) << c.out();
    ASSERT_TRUE(c.wait_for("invalidated public.products (8)")) << c.out();
    c.send_line("4242");
    ASSERT_TRUE(c.wait_for("get (4242): loaded 4242,SKU-4242,new,1.00")) << c.out();
    c.send_line("8");
    ASSERT_TRUE(c.wait_for("get (8): not found")) << c.out();
    // Changes to other tables do not touch this cache.
    EXPECT_EQ(c.out().find("order_items"), std::string::npos) << c.out();

    // The end of stdin stops it gracefully: sync stopped and joined, exit 0.
    auto t0 = std::chrono::steady_clock::now();
    c.close_stdin();
    ASSERT_EQ(c.wait(), 0) << c.out() << c.err();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_NE(c.out().find("stopped; replica at "), std::string::npos) << c.out();
  }

  // Restarted on the same store with --seconds: it catches up with what changed while it
  // was down (the cache is filled from the replica), then stops by itself.
  src.db().exec("UPDATE products SET name = 'while down' WHERE id = 9");
  Child c(
      {args[0], "--source", src.conninfo(), "--store", store, "--table", "products", "--seconds", "2"},
      dir, /*pipe_stdin=*/false);
  EXPECT_EQ(c.wait(), 0) << c.out() << c.err();
  EXPECT_NE(c.out().find("ready: 40 rows of public.products cached"), std::string::npos) << c.out();
  EXPECT_NE(c.out().find("stopped; replica at "), std::string::npos) << c.out();
  EXPECT_EQ(Replica::open(store)->lookup("products", {"9"}).value().at(2), "while down");
}

INSTANTIATE_TEST_SUITE_P(Stores, EdgeCacheTest, ::testing::ValuesIn(test_support::kStoreKinds),
                         [](const auto& info) { return info.param; });

TEST(ExampleTest, TestFixturePasses) {
  TestDatabase src;  // empty: the fixture creates its own tables
  std::string dir = fresh_dir();
  std::vector<std::string> env = {"PGSEED_EXAMPLE_SOURCE=" + src.conninfo(),
                                  "PGSEED_EXAMPLE_STORE=" + dir + "/fixture.db"};
  // The first run seeds the replica; the second finds it and only catches up, with the
  // same slot.
  for (const char* what : {"first run", "second run"}) {
    Child c({example_path(PGSEED_EXAMPLE_TEST_FIXTURE)}, dir, false, env);
    ASSERT_EQ(c.wait(), 0) << what << ":\n" << c.out() << c.err();
    EXPECT_NE(c.out().find("[  PASSED  ] 2 tests."), std::string::npos) << what << ":\n" << c.out();
  }
  EXPECT_EQ(src.db().value("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"),
            "1");
  EXPECT_EQ(src.db().value("SELECT count(*) FROM transfers"), "2");  // one per run

  // Without a source it fails, saying why.
  Child c({example_path(PGSEED_EXAMPLE_TEST_FIXTURE)}, dir, false,
          {"PGSEED_EXAMPLE_SOURCE=", "PGSEED_EXAMPLE_STORE=" + dir + "/other.db"});
  EXPECT_NE(c.wait(), 0);
  EXPECT_NE(c.out().find("PGSEED_EXAMPLE_SOURCE is not set"), std::string::npos) << c.out();
}

}  // namespace
}  // namespace pgseed::test
