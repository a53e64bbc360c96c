// Failover slots (PostgreSQL 17+): sync --failover creates the slot with FAILOVER and
// switches an existing store's slot; status says so (text and json). The promotion
// ride-through is not tested yet.
#include "harness.h"
#include "stream_support.h"

namespace pgseed::test {

TEST(FailoverSlot, CreatedAndSwitchedAndReported) {
  Db server(server_conninfo());
  int major = std::atoi(server.value("SHOW server_version_num").c_str()) / 10000;
  TestDatabase src;
  src.db().exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)");
  if (major < 17) {
    RunResult r = run_pgseed({"sync", "--source", src.conninfo(), "--store", temp_store("sqlite"),
                              "--tables", "t", "--failover"});
    EXPECT_EQ(r.exit_code, 6) << r.err;  // source state: the server is too old
    EXPECT_NE(r.err.find("PostgreSQL 17"), std::string::npos) << r.err;
    GTEST_SKIP() << "failover slots need PostgreSQL 17 or later; this run is on " << major;
  }
  auto failover_of = [&](const std::string& slot) {
    return src.db().value("SELECT failover::text FROM pg_replication_slots WHERE slot_name = '" + slot + "'");
  };
  std::string a = temp_store("sqlite");
  std::string slot_a = "fo_a_" + src.name();
  RunResult r = run_pgseed({"sync", "--source", src.conninfo(), "--store", a, "--tables", "t",
                            "--slot", slot_a, "--failover"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(failover_of(slot_a), "true");

  // A store made without it: a later --failover switches its slot.
  std::string b = temp_store("rocksdb");
  std::string slot_b = "fo_b_" + src.name();
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", b, "--publication", slot_a,
                  "--slot", slot_b});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(failover_of(slot_b), "false");
  r = run_pgseed({"status", "--source", src.conninfo(), "--store", b});
  EXPECT_NE(r.out.find("failover slot:    no"), std::string::npos) << r.out;
  r = run_pgseed({"sync", "--source", src.conninfo(), "--store", b, "--failover"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("is a failover slot now"), std::string::npos) << r.err;
  EXPECT_EQ(failover_of(slot_b), "true");

  r = run_pgseed({"status", "--source", src.conninfo(), "--store", b});
  EXPECT_NE(r.out.find("failover slot:    yes"), std::string::npos) << r.out;
  // The test server names no standby in synchronized_standby_slots: warned.
  EXPECT_NE(r.out.find("failover_unguarded"), std::string::npos) << r.out;
  r = run_pgseed({"status", "--source", src.conninfo(), "--store", b, "--format", "json"});
  EXPECT_EQ(json_field(r.out, "failover"), "true") << r.out;
  EXPECT_EQ(json_field(r.out, "standby"), "false") << r.out;
  EXPECT_EQ(json_field(r.out, "synced"), "false") << r.out;
}

}  // namespace pgseed::test
