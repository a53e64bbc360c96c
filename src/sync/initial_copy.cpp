#include "sync/initial_copy.h"

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

#include "decode/copy_text.h"
#include "sync/bounded_queue.h"

namespace pgseed {

namespace {
constexpr size_t kBatchBytes = 2 << 20;        // a worker hands over ~2 MB of rows at a time
constexpr size_t kQueueBatches = 4;            // at most this many batches wait for the writer
constexpr size_t kCommitBytes = 256u << 20;    // the writer commits every ~256 MB

struct Batch {
  size_t table;  // index into the tables vector
  RowBatch rows;
};
}  // namespace

void InitialCopy::import_snapshot(const std::string& snapshot) {
  int n = jobs_ > 0 ? jobs_ : int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) {
    pg::Connection c = pg::Connection::open(conninfo_);
    c.exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", "starting the copy transaction");
    c.exec("SET TRANSACTION SNAPSHOT " + c.quote_literal(snapshot), "importing the snapshot");
    conns_.push_back(std::move(c));
  }
}

std::vector<pg::PublishedTable> InitialCopy::published_tables(const std::string& publication) {
  return pg::published_tables(conns_.at(0), publication);
}

void InitialCopy::run(Store& store, const std::vector<pg::PublishedTable>& tables,
                      bool own_transactions, const std::atomic<bool>* stop) {
  BoundedQueue<Batch> queue(kQueueBatches);
  std::atomic<size_t> next_table{0};
  std::atomic<bool> abort{false};
  std::exception_ptr worker_error;
  std::mutex error_mu;

  // Progress: rows and bytes per table, counted by the writer as it stores them.
  Progress progress;
  std::vector<std::atomic<bool>> table_done(tables.size());
  for (const auto& t : tables) {
    Progress::Table pt;
    pt.name = t.def.qualified();
    pt.estimated_rows = t.estimated_rows;
    pt.estimated_bytes = t.estimated_bytes;
    progress.tables.push_back(pt);
    if (t.estimated_rows > 0) progress.estimated_rows = std::max<int64_t>(progress.estimated_rows, 0) + t.estimated_rows;
    if (t.estimated_bytes > 0) progress.estimated_bytes = std::max<int64_t>(progress.estimated_bytes, 0) + t.estimated_bytes;
  }
  auto started = std::chrono::steady_clock::now();
  auto report = [&] {
    progress.elapsed_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    for (size_t i = 0; i < tables.size(); ++i) progress.tables[i].done = table_done[i];
    if (on_progress_) on_progress_(progress);
  };


  auto worker = [&](pg::Connection& conn) {
    try {
      for (;;) {
        size_t ti = next_table.fetch_add(1);
        if (ti >= tables.size() || abort) break;
        const auto& t = tables[ti];
        conn.exec(pg::copy_query(t), ("copying " + t.def.qualified()).c_str());
        Batch batch{ti, {}};
        size_t ncols = t.def.columns.size();
        for (;;) {
          char* buf = nullptr;
          int len = PQgetCopyData(conn.get(), &buf, 0);
          if (len == -1) break;  // COPY done
          if (len == -2) throw pg::error_from_result(nullptr, conn.get(), "copying " + t.def.qualified());
          std::unique_ptr<char, decltype(&PQfreemem)> owned(buf, &PQfreemem);
          parse_copy_text_line(std::string_view(buf, size_t(len)), ncols, batch.rows);
          if (batch.rows.bytes() >= kBatchBytes) {
            if (!queue.push(std::move(batch))) return;  // writer gave up
            batch = Batch{ti, {}};
          }
        }
        pg::Result end(PQgetResult(conn.get()));
        if (PQresultStatus(end.get()) != PGRES_COMMAND_OK)
          throw pg::error_from_result(end.get(), conn.get(), "copying " + t.def.qualified());
        while (pg::Result more{PQgetResult(conn.get())}) {}
        if (!batch.rows.empty() && !queue.push(std::move(batch))) return;
        table_done[ti] = true;
      }
    } catch (...) {
      std::lock_guard lock(error_mu);
      if (!worker_error) worker_error = std::current_exception();
      abort = true;
      queue.close(/*discard=*/true);
    }
  };

  std::vector<std::thread> threads;
  std::atomic<size_t> running{conns_.size()};
  for (auto& c : conns_)
    threads.emplace_back([&, cp = &c] {
      worker(*cp);
      if (--running == 0) queue.close();
    });

  // The writer: this thread. On failure, stop the workers before rethrowing.
  try {
    size_t since_commit = 0;
    if (own_transactions) store.begin();
    auto last_report = std::chrono::steady_clock::now();
    while (auto b = queue.pop()) {
      if (stop && stop->load()) throw CopyInterrupted{};
      store.insert_batch(tables[b->table].def, b->rows);
      rows_ += b->rows.rows();
      since_commit += b->rows.bytes();
      progress.rows += b->rows.rows();
      progress.bytes += b->rows.text_bytes();
      progress.tables[b->table].rows += b->rows.rows();
      progress.tables[b->table].bytes += b->rows.text_bytes();
      if (own_transactions && since_commit >= kCommitBytes) {
        store.commit();
        store.begin();
        since_commit = 0;
      }
      auto now = std::chrono::steady_clock::now();
      if (now - last_report > std::chrono::seconds(1)) {
        report();
        last_report = now;
      }
    }
    report();
    if (own_transactions) {
      if (worker_error) store.rollback();
      else store.commit();
    }
  } catch (...) {
    abort = true;
    queue.close(true);
    for (auto& c : conns_) PQrequestCancel(c.get());
    for (auto& t : threads) t.join();
    conns_.clear();
    if (own_transactions) {
      try {
        store.rollback();
      } catch (const Error&) {  // the original error is the one to report
      }
    }
    throw;
  }
  for (auto& t : threads) t.join();
  conns_.clear();
  if (worker_error) std::rethrow_exception(worker_error);
}

}  // namespace pgseed
