// edge_cache — a service that answers lookups from memory, in front of a local replica
// (SQLite or RocksDB) of one PostgreSQL table that pgseed keeps current on a background
// thread.
//
//   edge_cache --source CONNINFO --store STORE --table T [--seconds N]
//
// STORE is sqlite:PATH, rocksdb:PATH or a bare PATH (SQLite).
//
// Requests come on stdin, one key per line ("42"; "7,north" for a composite key, in the
// order of the table's key columns). Each answer is one line on stdout:
//
//   get (42): hit 42,Widget,9.99       served from memory
//   get (42): loaded 42,Widget,9.99    not in memory: read from the replica, then cached
//   get (42): not found
//
// Every change to T that reaches the replica invalidates the cache and says so:
//
//   invalidated public.products (42)
//   invalidated public.products (all rows)      (a TRUNCATE)
//
// It runs until the end of stdin, or for N seconds with --seconds (then stdin may end
// early); then it stops the sync gracefully and prints "stopped; replica at X/X".
//
// The shape of it, which is what to copy:
//  1. A one-shot pgseed::Sync on the main thread. The first run creates the slot and
//     copies the table; later runs catch up from where the store stands. When it returns,
//     the replica is complete, and nothing writes to it.
//  2. The cache is filled from Replica::scan, while nothing writes to the replica. The
//     Replica stays open while the follow sync of 3 writes the store (either store: a
//     Replica never takes the writer's lock) and reads each commit of it.
//  3. A follow-mode pgseed::Sync on a background thread. Its on_commit callback runs after
//     each source transaction is durably in the store and erases the keys it touched.
//     Transactions committed between 1 and 3 are not missed: the follow sync resumes from
//     the store's position and reports them like any other.
//  4. Sync::stop() from the main thread, then join: the sync finishes the transaction in
//     hand, confirms it to the server and returns.
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pgseed/error.h>
#include <pgseed/replica.h>
#include <pgseed/sync.h>

namespace {

using Key = std::vector<std::string>;  // key column values in key order, PostgreSQL text form

// One line per call, whole, from any thread.
void say(const std::string& line) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::cout << line << std::endl;  // flushed: whoever reads our output sees it at once
}

std::string key_text(const Key& key) {
  std::string out = "(";
  for (size_t i = 0; i < key.size(); ++i) out += (i ? "," : "") + key[i];
  return out + ")";
}

std::string row_text(const pgseed::Values& row) {
  std::string out;
  for (size_t i = 0; i < row.size(); ++i) {
    if (i) out += ',';
    pgseed::append_csv_field(out, row[i], row.size() == 1);
  }
  return out;
}

// The in-memory cache. Read by the request thread, invalidated by the sync thread.
//
// A row read from the replica may already be stale when it is put in the cache: the sync
// thread can store a newer version and invalidate the key between the read and the put.
// The generation counter catches that: a put is dropped when any invalidation happened
// since the caller took generation() before its read.
class Cache {
 public:
  std::optional<pgseed::Values> get(const Key& key) const {
    std::lock_guard lock(mu_);
    auto it = rows_.find(key);
    if (it == rows_.end()) return std::nullopt;
    return it->second;
  }
  uint64_t generation() const {
    std::lock_guard lock(mu_);
    return generation_;
  }
  void put(const Key& key, pgseed::Values row, uint64_t generation_before_read) {
    std::lock_guard lock(mu_);
    if (generation_before_read == generation_) rows_[key] = std::move(row);
  }
  void invalidate(const Key& key) {
    std::lock_guard lock(mu_);
    rows_.erase(key);
    ++generation_;
  }
  void clear() {
    std::lock_guard lock(mu_);
    rows_.clear();
    ++generation_;
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return rows_.size();
  }

 private:
  mutable std::mutex mu_;
  std::map<Key, pgseed::Values> rows_;
  uint64_t generation_ = 0;
};

// Reads request lines from stdin without blocking past a deadline, so that the main loop
// can also notice the end of the run and a failed sync.
class RequestReader {
 public:
  enum class Result { kLine, kTimeout, kEnd };
  Result next(std::string& line, int timeout_ms) {
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return Result::kLine;
      }
      if (eof_) return Result::kEnd;
      pollfd pfd{STDIN_FILENO, POLLIN, 0};
      if (poll(&pfd, 1, timeout_ms) <= 0) return Result::kTimeout;
      char chunk[4096];
      ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
      if (n <= 0) {
        eof_ = true;
        if (!buf_.empty()) buf_ += '\n';  // a last line without a newline
      } else {
        buf_.append(chunk, size_t(n));
      }
    }
  }

 private:
  std::string buf_;
  bool eof_ = false;
};

Key split_key(const std::string& line) {
  Key key;
  size_t start = 0;
  for (;;) {
    size_t comma = line.find(',', start);
    key.push_back(line.substr(start, comma - start));
    if (comma == std::string::npos) return key;
    start = comma + 1;
  }
}

struct Args {
  std::string source, store, table;
  int seconds = 0;  // 0: until the end of stdin
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
    std::string value = argv[++i];
    if (flag == "--source") a.source = value;
    else if (flag == "--store") a.store = value;
    else if (flag == "--table") a.table = value;
    else if (flag == "--seconds") a.seconds = std::stoi(value);
    else throw std::invalid_argument("unknown option " + flag);
  }
  if (a.source.empty() || a.store.empty() || a.table.empty())
    throw std::invalid_argument(
        "usage: edge_cache --source CONNINFO --store STORE --table T [--seconds N]");
  return a;
}

int run(const Args& args) {
  // The table as the library names it ("public.products"): on_commit uses this form.
  const std::string table = pgseed::parse_table_list(args.table).at(0);

  pgseed::SyncOptions options;
  options.source = args.source;
  options.store = args.store;
  options.tables = {table};  // first run: a publication for this table only
  // The library never prints; it hands its log lines to this sink, from any thread.
  options.log = [](pgseed::LogLevel level, std::string_view message) {
    if (level >= pgseed::LogLevel::kInfo) std::cerr << "pgseed: " + std::string(message) + "\n";
  };

  // 1. Copy, or catch up, before serving.
  pgseed::Sync(options).run();

  // 2. Fill the cache. The request thread uses the Replica (it could be shared: a Replica
  // is thread-safe).
  auto replica = pgseed::Replica::open(options.store);
  std::vector<size_t> key_columns;  // indexes of the key columns in a row, in key order
  for (const pgseed::TableInfo& t : replica->tables()) {
    if (t.name != table) continue;
    for (int position = 1;; ++position) {
      size_t before = key_columns.size();
      for (size_t c = 0; c < t.columns.size(); ++c)
        if (t.columns[c].key_position == position) key_columns.push_back(c);
      if (key_columns.size() == before) break;
    }
  }
  if (key_columns.empty())
    throw pgseed::Error(pgseed::ErrorCategory::kConfiguration,
                        table + " is not in the replica or has no key to look rows up by");

  Cache cache;
  replica->scan(table, [&](const pgseed::Values& row) {
    Key key;
    for (size_t c : key_columns) key.push_back(row[c].value_or(""));
    cache.put(key, row, 0);
  });
  say("ready: " + std::to_string(cache.size()) + " rows of " + table + " cached; replica at " +
      replica->state().applied_lsn.str());

  // 3. Follow the source in the background; invalidate from the change callback. It runs
  // on the sync's thread, after the transaction is durable: a lookup that misses the
  // cache from now on reads the new version from the replica.
  options.follow = true;
  options.on_commit = [&](const pgseed::AppliedTransaction& txn) {
    for (const auto& change : txn.changes) {
      if (change.table != table) continue;
      if (change.kind == pgseed::ChangeKind::kTruncate) {
        cache.clear();
        say("invalidated " + table + " (all rows)");
      } else {
        cache.invalidate(change.key);
        say("invalidated " + table + " " + key_text(change.key));
      }
    }
  };
  pgseed::Sync follower(options);
  std::exception_ptr sync_error;
  std::atomic<bool> sync_ended{false};
  std::thread sync_thread([&] {
    try {
      follower.run();
    } catch (...) {
      sync_error = std::current_exception();  // rethrown on the main thread after join
    }
    sync_ended = true;
  });

  // Serve requests until the end of stdin, or for --seconds.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(args.seconds);
  RequestReader requests;
  bool input_open = true;
  std::string line;
  while (!sync_ended) {
    if (args.seconds > 0 && std::chrono::steady_clock::now() >= deadline) break;
    if (!input_open) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    RequestReader::Result r = requests.next(line, 100);
    if (r == RequestReader::Result::kEnd) {
      input_open = false;
      if (args.seconds == 0) break;
      continue;
    }
    if (r == RequestReader::Result::kTimeout || line.empty()) continue;

    Key key = split_key(line);
    if (auto row = cache.get(key)) {
      say("get " + key_text(key) + ": hit " + row_text(*row));
      continue;
    }
    uint64_t generation = cache.generation();
    std::optional<pgseed::Values> row;
    try {
      row = replica->lookup(table, key);
    } catch (const pgseed::Error& e) {  // e.g. a key with the wrong number of values
      say("get " + key_text(key) + ": error " + e.what());
      continue;
    }
    if (!row) {
      say("get " + key_text(key) + ": not found");
      continue;
    }
    say("get " + key_text(key) + ": loaded " + row_text(*row));
    cache.put(key, std::move(*row), generation);
  }

  // 4. Stop: the sync finishes the transaction in hand, confirms it and returns.
  follower.stop();
  sync_thread.join();
  if (sync_error) std::rethrow_exception(sync_error);
  say("stopped; replica at " + replica->state().applied_lsn.str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const pgseed::Error& e) {
    std::cerr << "edge_cache: " << pgseed::category_name(e.category()) << " error: " << e.what()
              << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "edge_cache: " << e.what() << std::endl;
    return 2;
  }
}
