// StreamSpool: segments of streamed transactions held on disk, cut back when a
// subtransaction aborts, replayed in order at the commit. Messages are built by hand as
// the server writes them inside a segment (type, stream xid, body); each Insert's body is
// its own label, so a replay reads back as the list of labels it holds.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "decode/pgoutput.h"
#include "pgseed/error.h"
#include "sync/stream_spool.h"
#include "unit/captured_hex.h"
#include "unit/store_test_support.h"
#include "unit/wire_buf.h"

namespace pgseed {
namespace {

using test_support::Buf;
using test_support::Bytes;
using test_support::TempDir;

// An Insert of one text column `label` into relation 16384, by (sub)transaction `xid`.
Bytes insert(uint32_t xid, const std::string& label) {
  return Buf().u8('I').u32(xid).u32(16384).u8('N').u16(1).text(label).bytes();
}

// A Relation message for relation 16384, as sent inside a stream by `xid`.
Bytes relation(uint32_t xid) {
  return Buf().u8('R').u32(xid).u32(16384).str("public").str("t").u8('d').u16(1)
      .u8(1).str("v").u32(25).u32(0xffffffff).bytes();
}

// What a replay of `xid` yields: "R" for a Relation, the label for an Insert.
std::vector<std::string> replay(StreamSpool& spool, uint32_t xid) {
  std::vector<std::string> out;
  spool.replay(xid, [&](std::span<const uint8_t> m) {
    PgOutputMessage msg = decode_pgoutput(m, /*in_stream=*/true);
    if (std::holds_alternative<Relation>(msg)) out.push_back("R");
    else out.push_back(std::string(std::get<Insert>(msg).new_tuple.at(0).text));
  });
  return out;
}

using Labels = std::vector<std::string>;

TEST(StreamSpool, SegmentsOfTwoTransactionsInterleaved) {
  TempDir tmp;
  StreamSpool spool(tmp.sub("spool"));
  EXPECT_FALSE(std::filesystem::exists(tmp.sub("spool")));  // made by the first segment
  spool.begin_segment(100, true);
  spool.append(relation(100));
  spool.append(insert(100, "a1"));
  spool.end_segment();
  spool.begin_segment(200, true);
  spool.append(insert(200, "b1"));
  spool.end_segment();
  spool.begin_segment(100, false);
  spool.append(Buf().u8('O').u64(0).str("origin").bytes());  // an Origin is not stored
  spool.append(insert(100, "a2"));
  spool.end_segment();
  EXPECT_EQ(spool.in_progress(), 2u);
  EXPECT_EQ(replay(spool, 200), (Labels{"b1"}));
  EXPECT_EQ(replay(spool, 100), (Labels{"R", "a1", "a2"}));
  EXPECT_EQ(spool.in_progress(), 0u);
  EXPECT_TRUE(std::filesystem::is_empty(tmp.sub("spool")));
}

// worker.c's rule: a subtransaction's abort cuts the file back to its first change, which
// also removes its children's changes (and the subtransactions first seen after it).
TEST(StreamSpool, SubtransactionAbortCutsBackToItsFirstChange) {
  TempDir tmp;
  StreamSpool spool(tmp.sub("spool"));
  spool.begin_segment(100, true);
  spool.append(insert(100, "top1"));
  spool.append(insert(101, "s1"));     // SAVEPOINT s1
  spool.append(insert(102, "s2"));     // SAVEPOINT s2, nested
  spool.end_segment();
  spool.begin_segment(100, false);
  spool.append(insert(102, "s2b"));
  spool.append(insert(101, "s1b"));    // RELEASE s2: its parent goes on
  spool.end_segment();
  spool.abort(100, 102);               // ROLLBACK TO s2: s2's changes onwards go
  // Two records left (a 4-byte length each): top1 and s1.
  EXPECT_EQ(spool.size_of(100), 8 + insert(100, "top1").size() + insert(101, "s1").size());
  spool.begin_segment(100, false);
  spool.append(insert(103, "s3"));     // a new subtransaction, later rolled back...
  spool.append(insert(100, "top2"));
  spool.end_segment();
  spool.abort(100, 104);               // ...unknown subtransaction (no change streamed): nothing
  spool.abort(999, 999);               // unknown transaction: nothing
  spool.abort(100, 103);
  EXPECT_EQ(replay(spool, 100), (Labels{"top1", "s1"}));
}

TEST(StreamSpool, NestedSubtransactionsGoWithTheirParent) {
  TempDir tmp;
  StreamSpool spool(tmp.sub("spool"));
  spool.begin_segment(100, true);
  spool.append(insert(100, "top"));
  spool.append(insert(101, "a"));
  spool.append(insert(102, "a.b"));
  spool.append(insert(103, "a.b.c"));
  spool.end_segment();
  spool.abort(100, 101);  // ROLLBACK TO a: a and everything nested in it
  spool.begin_segment(100, false);
  spool.append(insert(102, "never"));  // (not what the server sends; shows 102 is forgotten)
  spool.end_segment();
  spool.abort(100, 102);
  EXPECT_EQ(replay(spool, 100), (Labels{"top"}));
}

// pgoutput describes a relation once per streamed transaction: a description in a part cut
// off is kept for the changes after it.
TEST(StreamSpool, RelationsOfTheCutPartAreKept) {
  TempDir tmp;
  StreamSpool spool(tmp.sub("spool"));
  spool.begin_segment(100, true);
  spool.append(insert(100, "top"));
  spool.append(relation(101));
  spool.append(insert(101, "lost"));
  spool.end_segment();
  spool.abort(100, 101);
  spool.begin_segment(100, false);
  spool.append(insert(100, "after"));
  spool.end_segment();
  EXPECT_EQ(replay(spool, 100), (Labels{"top", "R", "after"}));
}

TEST(StreamSpool, WholeTransactionAbortForgetsIt) {
  TempDir tmp;
  StreamSpool spool(tmp.sub("spool"));
  spool.begin_segment(100, true);
  spool.append(insert(100, "x"));
  spool.end_segment();
  spool.abort(100, 100);
  EXPECT_EQ(spool.in_progress(), 0u);
  EXPECT_TRUE(std::filesystem::is_empty(tmp.sub("spool")));
  EXPECT_THROW(spool.replay(100, [](std::span<const uint8_t>) {}), Error);
}

// A large message (beyond the write buffer) and many small ones around it, in order.
TEST(StreamSpool, LargeMessagesKeepTheirOrder) {
  TempDir tmp;
  StreamSpool spool(tmp.sub("spool"));
  std::string big(3 << 20, 'x');
  spool.begin_segment(7, true);
  for (int i = 0; i < 20000; ++i) spool.append(insert(7, "r" + std::to_string(i)));
  spool.append(insert(7, big));
  spool.append(insert(7, "last"));
  spool.end_segment();
  Labels got = replay(spool, 7);
  ASSERT_EQ(got.size(), 20002u);
  EXPECT_EQ(got[19999], "r19999");
  EXPECT_EQ(got[20000], big);
  EXPECT_EQ(got[20001], "last");
}

TEST(StreamSpool, ProtocolErrors) {
  TempDir tmp;
  StreamSpool spool(tmp.sub("spool"));
  auto kind_of = [](auto f) {
    try {
      f();
    } catch (const Error& e) {
      return e.category();
    }
    return ErrorCategory::kStore;  // no error: a category no case expects
  };
  EXPECT_EQ(kind_of([&] { spool.append(insert(1, "x")); }), ErrorCategory::kDecode);  // no segment
  EXPECT_EQ(kind_of([&] { spool.begin_segment(1, false); }), ErrorCategory::kDecode);  // no first
  spool.begin_segment(1, true);
  EXPECT_EQ(kind_of([&] { spool.begin_segment(2, true); }), ErrorCategory::kDecode);  // nested
  EXPECT_EQ(kind_of([&] { spool.append(Buf().u8('B').u64(0).bytes()); }), ErrorCategory::kDecode);
  EXPECT_EQ(kind_of([&] { spool.append(Buf().u8('I').u8(0).bytes()); }), ErrorCategory::kDecode);
  EXPECT_EQ(kind_of([&] { spool.abort(1, 1); }), ErrorCategory::kDecode);  // inside a segment
  spool.end_segment();
  EXPECT_EQ(kind_of([&] { spool.end_segment(); }), ErrorCategory::kDecode);
}

// What a killed process left is removed by reset(); the destructor removes the directory.
TEST(StreamSpool, ResetAndDestructorRemoveTheDirectory) {
  TempDir tmp;
  std::string dir = tmp.sub("spool");
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/42.changes") << "left by a killed process"; }
  {
    StreamSpool spool(dir);
    spool.reset();
    EXPECT_FALSE(std::filesystem::exists(dir));
    spool.begin_segment(1, true);
    spool.append(insert(1, "x"));
    EXPECT_TRUE(std::filesystem::exists(dir));
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
}

// The session captured from PostgreSQL 15 (tests/data/pgoutput/proto2_stream.hex, phase 2
// of capture.sql), fed to the spool as stream apply does: three streamed transactions, one
// committed, one with a savepoint rolled back (rows 300-399), one rolled back (500-599).
TEST(StreamSpool, CapturedSessionReplaysWhatCommitted) {
  TempDir tmp;
  StreamSpool spool(tmp.sub("spool"));
  std::vector<std::string> applied;  // "I <first column>" per replayed Insert, in order
  int commits = 0, subxact_aborts = 0, aborts = 0;
  for (const Bytes& m : test_support::load_hex("proto2_stream.hex")) {
    if (spool.in_segment()) {
      if (m.at(0) == 'E') spool.end_segment();
      else spool.append(m);
      continue;
    }
    PgOutputMessage msg = decode_pgoutput(m, /*in_stream=*/false);
    if (auto* st = std::get_if<StreamStart>(&msg)) {
      spool.begin_segment(st->xid, st->first_segment);
    } else if (auto* a = std::get_if<StreamAbort>(&msg)) {
      (a->subxid == a->xid ? aborts : subxact_aborts)++;
      spool.abort(a->xid, a->subxid);
    } else if (auto* c = std::get_if<StreamCommit>(&msg)) {
      ++commits;
      spool.replay(c->xid, [&](std::span<const uint8_t> r) {
        PgOutputMessage in = decode_pgoutput(r, /*in_stream=*/true);
        if (auto* i = std::get_if<Insert>(&in)) applied.push_back(std::string(i->new_tuple.at(0).text));
      });
    }
  }
  EXPECT_EQ(commits, 2);
  EXPECT_EQ(subxact_aborts, 1);
  EXPECT_EQ(aborts, 1);
  EXPECT_EQ(spool.in_progress(), 0u);
  auto has = [&](const std::string& id) { return std::find(applied.begin(), applied.end(), id) != applied.end(); };
  for (int id : {100, 150, 199, 200, 299, 400}) EXPECT_TRUE(has(std::to_string(id))) << id;
  for (int id : {300, 350, 399, 500, 599}) EXPECT_FALSE(has(std::to_string(id))) << id;
}

}  // namespace
}  // namespace pgseed
