// pgseed::Sync — bootstrap a replica and keep it current. The one entry point of the
// library's write side; the CLI's `sync` is a thin wrapper over it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pgseed/log.h"
#include "pgseed/lsn.h"

namespace pgseed {

// One applied source transaction, as the change callback sees it.
struct AppliedTransaction {
  Lsn commit_lsn;
  std::string commit_time;  // ISO 8601, UTC
  struct Change {
    std::string table;               // "schema.table", quoted as PostgreSQL needs
    char kind;                       // 'I' insert, 'U' update, 'D' delete, 'T' truncate
    std::vector<std::string> key;    // key values in PostgreSQL text form (empty for 'T')
  };
  std::vector<Change> changes;
};

struct SyncOptions {
  std::string source;       // libpq conninfo (key=value or URI); PG* variables apply
  std::string store;        // "sqlite:PATH", "rocksdb:PATH" or PATH
  std::string publication;  // use this publication (created for `tables` if missing)
  std::vector<std::string> tables;  // names as SQL writes them: public."Order Items"
  std::string slot;         // default: the store's, or a generated pgseed_<random>
  int jobs = 0;             // copy connections; 0 = number of cores
  bool follow = false;      // keep streaming until stop(); else stop when caught up
  LogSink log;              // where progress and warnings go; may be empty
  // Called on the sync's thread after each transaction is durably stored.
  std::function<void(const AppliedTransaction&)> on_commit;
};

// Runs a sync on the caller's thread. Thread-safe: stop() from any thread.
class Sync {
 public:
  explicit Sync(SyncOptions options);
  ~Sync();

  // First run: creates the slot (and a publication if needed), copies the tables under
  // the slot's exported snapshot, then streams. Later runs resume from the store's
  // applied LSN. One-shot (follow = false): returns once everything the server had
  // written when the sync started is stored. Follow: returns after stop().
  // Throws pgseed::Error; the store is then left at its last durable commit, and a
  // first run that failed leaves no slot and no publication behind.
  void run();

  // Asks run() to finish the transaction in hand, confirm it, and return.
  void stop();

 private:
  SyncOptions options_;
  std::atomic<bool> stop_{false};
};

}  // namespace pgseed
