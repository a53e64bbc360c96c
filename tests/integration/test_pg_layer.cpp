// src/pg against a real server: the replication connection's commands and their errors,
// and a CopyReader cancelled from another thread.
#include <atomic>
#include <string>
#include <thread>

#include "pg/connection.h"
#include "pg/copy_reader.h"
#include "pg/replication_connection.h"
#include "pgseed/error.h"
#include "stream_support.h"

namespace pgseed::test {
namespace {

TEST(ReplicationConnection, IdentifiesAndCreatesSlots) {
  TestDatabase src;
  pg::ReplicationConnection repl = pg::ReplicationConnection::open(src.conninfo());
  pg::SystemIdentity id = repl.identify_system();
  EXPECT_EQ(id.database, src.name());
  EXPECT_EQ(id.system_id, src.db().value("SELECT system_identifier::text FROM pg_control_system()"));
  EXPECT_GE(id.timeline, 1u);
  EXPECT_TRUE(id.xlogpos.valid());

  pg::CreatedSlot s = repl.create_slot("pgl_" + src.name(), {.temporary = true});
  EXPECT_EQ(s.slot_name, "pgl_" + src.name());
  EXPECT_TRUE(s.consistent_point.valid());
  EXPECT_FALSE(s.snapshot_name.empty());
  EXPECT_EQ(src.db().value("SELECT temporary::text FROM pg_replication_slots WHERE slot_name = 'pgl_" +
                           src.name() + "'"),
            "true");

  pg::ReplicationConnection other = pg::ReplicationConnection::open(src.conninfo());
  pg::CreatedSlot n = other.create_slot("pgl2_" + src.name(),
                                        {.temporary = true, .snapshot = pg::SnapshotAction::kNothing});
  EXPECT_TRUE(n.snapshot_name.empty());
}

TEST(ReplicationConnection, ErrorsAreClassified) {
  TestDatabase src;
  pg::ReplicationConnection repl = pg::ReplicationConnection::open(src.conninfo());
  try {
    repl.start_logical("no_such_slot", Lsn(), {.publication_names = {"p"}});
    ADD_FAILURE() << "START_REPLICATION of a missing slot succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.sqlstate(), "42704") << e.what();
    EXPECT_FALSE(e.transient()) << e.what();
  }
  if (repl.server_version() < 170000) {
    try {
      repl.create_slot("pgl_fo_" + src.name(), {.temporary = true, .failover = true});
      ADD_FAILURE() << "a failover slot before PostgreSQL 17";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::kSourceState) << e.what();
    }
  }
}

// The writer of the initial copy cancels the workers' COPYs from its own thread.
TEST(CopyReader, CancelledFromAnotherThread) {
  TestDatabase src;
  pg::Connection conn = pg::Connection::open(src.conninfo());
  pg::CopyReader reader(conn);
  // generate_series in the SELECT list streams its rows (in FROM it would first be
  // materialized): the first lines arrive at once, the last only after minutes.
  reader.start("COPY (SELECT generate_series(1, 200000000), repeat('x', 100)) TO STDOUT",
               "reading a long COPY");
  std::atomic<bool> reading{false};
  std::string sqlstate = "(none)";
  bool transient = true;
  std::thread t([&] {
    try {
      pg::CopyBuffer line;
      while (reader.next(line)) reading = true;
    } catch (const Error& e) {
      sqlstate = e.sqlstate();
      transient = e.transient();
    }
  });
  bool started = wait_until([&] { return reading.load(); }, 60);
  EXPECT_TRUE(reader.cancel());
  t.join();
  ASSERT_TRUE(started);
  EXPECT_EQ(sqlstate, "57014");  // query_canceled
  EXPECT_FALSE(transient);
  // The connection is ready for its next command.
  EXPECT_EQ(conn.query_value("SELECT 41 + 1"), "42");

  // And a COPY that runs to its end hands out every line.
  reader.start("COPY (SELECT i FROM generate_series(1, 1000) i) TO STDOUT", "reading");
  int lines = 0;
  reader.for_each_line([&](std::string_view line) {
    ++lines;
    EXPECT_EQ(line.back(), '\n');
  });
  EXPECT_EQ(lines, 1000);
}

}  // namespace
}  // namespace pgseed::test
