// Helpers shared by the streaming and fault tests: store status, slot positions, polling,
// and a small deterministic workload on a keyed and a key-less (REPLICA IDENTITY FULL) table.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <thread>

#include "harness.h"

namespace pgseed::test {

// The value of "key" in a flat JSON object (strings unquoted, no unescaping).
inline std::string json_field(const std::string& json, const std::string& key) {
  std::string pat = "\"" + key + "\":";
  auto p = json.find(pat);
  if (p == std::string::npos) return "";
  p += pat.size();
  if (p < json.size() && json[p] == '"') {
    auto e = json.find('"', p + 1);
    return e == std::string::npos ? "" : json.substr(p + 1, e - p - 1);
  }
  auto e = json.find_first_of(",}", p);
  return json.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

// "X/X" as a number; 0 for anything else (an empty or NULL LSN).
inline uint64_t lsn_value(const std::string& s) {
  auto slash = s.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= s.size()) return 0;
  try {
    return (std::stoull(s.substr(0, slash), nullptr, 16) << 32) |
           std::stoull(s.substr(slash + 1), nullptr, 16);
  } catch (...) {
    return 0;
  }
}

struct StoreStatus {
  std::string phase;
  std::string slot;
  std::string applied_lsn;
};

// `pgseed status --store S --format json` (the store must not be open elsewhere).
inline StoreStatus store_status(const std::string& store) {
  RunResult r = run_pgseed({"status", "--store", store, "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return {json_field(r.out, "phase"), json_field(r.out, "slot"), json_field(r.out, "applied_lsn")};
}

inline std::string quote_literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// The slot's confirmed_flush_lsn ("" when there is no such slot).
inline std::string slot_confirmed(Db& db, const std::string& slot) {
  return db.value("SELECT coalesce(confirmed_flush_lsn::text, '') FROM pg_replication_slots "
                  "WHERE slot_name = " + quote_literal(slot));
}

// The pid of the walsender holding the slot ("" when inactive).
inline std::string slot_active_pid(Db& db, const std::string& slot) {
  return db.value("SELECT coalesce(active_pid::text, '') FROM pg_replication_slots "
                  "WHERE slot_name = " + quote_literal(slot));
}

// Polls `done` every `poll_ms` until it holds or `seconds` pass; returns whether it held.
inline bool wait_until(const std::function<bool()>& done, double seconds, int poll_ms = 50) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

// Waits until the slot has confirmed `lsn` (the store holds everything committed before it).
inline bool wait_confirmed(Db& db, const std::string& slot, const std::string& lsn,
                           double seconds = 30) {
  uint64_t want = lsn_value(lsn);
  return wait_until([&] { return lsn_value(slot_confirmed(db, slot)) >= want; }, seconds, 100);
}

// A fresh path for a background pgseed's log.
inline std::string temp_log_path() {
  std::string s = temp_store("rocksdb");
  return s.substr(s.find(':') + 1) + ".log";
}

// Runs one-shot `pgseed sync` until it exits 0 (at most `attempts` times).
inline void sync_until_ok(TestDatabase& src, const std::string& store, int attempts = 5) {
  RunResult r;
  for (int i = 0; i < attempts; ++i) {
    r = run_pgseed(with_default_selection({"sync", "--source", src.conninfo(), "--store", store}, store));
    if (r.exit_code == 0) return;
  }
  FAIL() << "pgseed sync did not succeed in " << attempts << " attempts: " << r.err;
}

// A key-less table whose rows repeat: applying a change twice (or missing one) changes its
// row count, so comparing it with the source proves exactly-once apply.
inline const char* kWorkloadSchema =
    "CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL, note text);"
    "INSERT INTO acct SELECT i, 0, 'n' || i FROM generate_series(1, 5000) i;"
    "CREATE TABLE events (kind int, tag text);"  // no key
    "ALTER TABLE events REPLICA IDENTITY FULL;"
    "INSERT INTO events SELECT i % 20, 'e' FROM generate_series(1, 400) i;";

// Transaction `i` of the workload: mostly small, every 50th large. Deterministic in `i`.
inline std::string workload_txn(int i, std::mt19937& rng) {
  int k = int(rng() % 5000) + 1;
  int kind = int(rng() % 20);
  std::string s = "BEGIN;";
  if (i % 50 == 49) {
    // Large: thousands of changes on both tables in one transaction.
    s += "UPDATE acct SET bal = bal + 1 WHERE id % 4 = " + std::to_string(i % 4) + ";";
    s += "INSERT INTO events SELECT " + std::to_string(kind) +
         ", 'bulk' FROM generate_series(1, 300);";
    s += "DELETE FROM events WHERE ctid IN (SELECT ctid FROM events WHERE tag = 'bulk' LIMIT 150);";
  } else {
    s += "UPDATE acct SET bal = bal + " + std::to_string(i) + " WHERE id = " + std::to_string(k) + ";";
    s += "INSERT INTO events VALUES (" + std::to_string(kind) + ", 'e'), (" +
         std::to_string(kind) + ", 'e');";
    if (i % 3 == 0)
      s += "DELETE FROM events WHERE ctid = (SELECT ctid FROM events WHERE kind = " +
           std::to_string(kind) + " LIMIT 1);";
    if (i % 5 == 0)
      s += "UPDATE events SET tag = tag || 'u' WHERE ctid = (SELECT ctid FROM events WHERE kind = " +
           std::to_string((kind + 1) % 20) + " LIMIT 1);";
    if (i % 7 == 0) s += "INSERT INTO acct VALUES (" + std::to_string(100000 + i) + ", 1, NULL);";
  }
  return s + "COMMIT;";
}

inline void expect_workload_equal(TestDatabase& src, const std::string& store) {
  expect_table_equal(src, store, "public.acct");
  expect_table_equal(src, store, "public.events");
}

}  // namespace pgseed::test
