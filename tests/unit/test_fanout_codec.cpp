// The fan-out encoding (src/fanout, src/fanout/ENCODING.md): transactions, parts, resync
// markers and snapshot chunks round-trip; the bytes start as documented; every truncation
// and a few lies are refused with Error(kDecode), never read outside the buffer.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fanout/snapshot_codec.h"
#include "fanout/txn_codec.h"
#include "nats/nats_url.h"
#include "pgseed/error.h"

namespace pgseed {
namespace {

using fanout::Message;

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TableDef orders() {
  TableDef t;
  t.source_oid = 16384;
  t.schema = "public";
  t.name = "Order Items";
  t.snapshot_lsn = Lsn(0x100);
  t.relfilenode = 16390;
  t.columns = {{"id", 23, 23, "integer", StorageClass::kInteger, 1, 1, -1},
               {"note", 25, 25, "text", StorageClass::kText, 0, 2, -1},
               {"price", 1700, 1700, "numeric(10,2)", StorageClass::kText, 0, 4, 655366}};
  return t;
}

TableDef keyless() {
  TableDef t;
  t.source_oid = 16400;
  t.schema = "s";
  t.name = "log";
  t.columns = {{"a", 20, 20, "bigint", StorageClass::kInteger, 0, 1, -1}};
  return t;
}

// One transaction with every kind of change and value, over two tables.
std::string sample_record(Lsn final_lsn = Lsn(0x1000), Lsn end_lsn = Lsn(0x1030)) {
  fanout::TxnEncoder e;
  e.begin(final_lsn, 123456789);
  Row r1 = {Datum::of("1"), Datum::null(), Datum::of("9.90")};
  e.insert(orders(), r1);
  Row key = {Datum::of("1"), Datum::null(), Datum::null()};
  Row r2 = {Datum::of("2"), Datum::unchanged(), Datum::of("")};
  e.update(orders(), 'K', key, r2);
  e.update(orders(), 0, {}, r2);
  Row whole = {Datum::of("7")};
  e.remove(keyless(), 'O', whole);
  e.truncate(orders());
  EXPECT_EQ(e.changes(), 5u);
  return e.commit(end_lsn);
}

TEST(FanoutCodec, TransactionRoundTrips) {
  std::vector<std::string> records = {sample_record(), sample_record(Lsn(0x2000), Lsn(0x2040))};
  std::string msg = fanout::encode_transactions(records);
  EXPECT_EQ(msg.substr(0, 5), std::string("PGS\x02T", 5));
  EXPECT_EQ(msg.size(), fanout::transactions_message_size(records[0].size() + records[1].size()));
  Message m = fanout::decode_message(bytes(msg));
  ASSERT_EQ(m.kind, Message::Kind::kTransactions);
  ASSERT_EQ(m.transactions.size(), 2u);
  const fanout::Transaction& t = m.transactions[0];
  EXPECT_EQ(t.final_lsn, Lsn(0x1000));
  EXPECT_EQ(t.end_lsn, Lsn(0x1030));
  EXPECT_EQ(t.commit_time, 123456789);
  EXPECT_EQ(m.transactions[1].final_lsn, Lsn(0x2000));
  ASSERT_EQ(t.tables.size(), 2u);  // each definition once, before its first change
  EXPECT_TRUE(t.tables[0].same_columns(orders()));
  EXPECT_EQ(t.tables[0].qualified(), "public.\"Order Items\"");
  EXPECT_EQ(t.tables[0].snapshot_lsn, Lsn(0x100));
  EXPECT_EQ(t.tables[0].relfilenode, 16390u);
  EXPECT_EQ(t.tables[0].columns[2].type_mod, 655366);
  EXPECT_EQ(t.tables[0].columns[2].type_name, "numeric(10,2)");
  EXPECT_EQ(t.tables[1].name, "log");
  ASSERT_EQ(t.changes.size(), 5u);
  EXPECT_EQ(t.changes[0].kind, 'I');
  ASSERT_EQ(t.changes[0].new_row.size(), 3u);
  EXPECT_EQ(t.changes[0].new_row[0].text, "1");
  EXPECT_TRUE(t.changes[0].new_row[1].is_null());
  EXPECT_EQ(t.changes[1].kind, 'U');
  EXPECT_EQ(t.changes[1].old_kind, 'K');
  EXPECT_EQ(t.changes[1].old_row[0].text, "1");
  EXPECT_EQ(t.changes[1].new_row[1].kind, Datum::Kind::kUnchanged);
  EXPECT_EQ(t.changes[1].new_row[2].kind, Datum::Kind::kText);  // empty text is not NULL
  EXPECT_EQ(t.changes[1].new_row[2].text, "");
  EXPECT_EQ(t.changes[2].old_kind, 0);
  EXPECT_TRUE(t.changes[2].old_row.empty());
  EXPECT_EQ(t.changes[3].kind, 'D');
  EXPECT_EQ(t.changes[3].table_oid, 16400u);
  EXPECT_EQ(t.changes[3].old_kind, 'O');
  EXPECT_EQ(t.changes[4].kind, 'T');
}

TEST(FanoutCodec, EveryTruncationIsRefused) {
  std::string msg = fanout::encode_transactions(std::vector<std::string>{sample_record()});
  for (size_t n = 0; n < msg.size(); ++n) {
    std::string cut = msg.substr(0, n);
    EXPECT_THROW(fanout::decode_message(bytes(cut)), Error) << "cut at " << n;
  }
  EXPECT_THROW(fanout::decode_message(bytes(msg + "x")), Error);  // trailing bytes
}

TEST(FanoutCodec, OtherVersionsAndKindsAreRefused) {
  std::string msg = fanout::encode_tables_resynced(Lsn(5));
  for (char v : {char(0), char(3)}) {
    std::string other = msg;
    other[3] = v;
    try {
      fanout::decode_message(bytes(other));
      FAIL() << "version " << int(v);
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::kDecode);
      EXPECT_NE(std::string(e.what()).find("version " + std::to_string(int(v))), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("upgrade pgseed"), std::string::npos) << e.what();
    }
  }
  std::string kind = msg;
  kind[4] = 'Z';
  EXPECT_THROW(fanout::decode_message(bytes(kind)), Error);
  std::string magic = msg;
  magic[0] = 'X';
  EXPECT_THROW(fanout::decode_message(bytes(magic)), Error);
}

// What an older hub wrote (version 1: transactions, parts, markers) is read as before; a
// position message is version 2's, never in a version-1 message.
TEST(FanoutCodec, VersionOneMessagesAreStillRead) {
  std::string txns = fanout::encode_transactions(std::vector<std::string>{sample_record()});
  txns[3] = 1;
  Message m = fanout::decode_message(bytes(txns));
  ASSERT_EQ(m.kind, Message::Kind::kTransactions);
  EXPECT_EQ(m.transactions.at(0).final_lsn, Lsn(0x1000));
  std::string marker = fanout::encode_tables_resynced(Lsn(7));
  marker[3] = 1;
  EXPECT_EQ(fanout::decode_message(bytes(marker)).kind, Message::Kind::kTablesResynced);
  std::string position = fanout::encode_position(Lsn(7));
  position[3] = 1;
  EXPECT_THROW(fanout::decode_message(bytes(position)), Error);
}

TEST(FanoutCodec, PositionRoundTrips) {
  std::string msg = fanout::encode_position(Lsn(0x16B374D848));
  EXPECT_EQ(msg, std::string("PGS\x02L\x00\x00\x00\x16\xB3\x74\xD8\x48", 13));
  Message m = fanout::decode_message(bytes(msg));
  EXPECT_EQ(m.kind, Message::Kind::kPosition);
  EXPECT_EQ(m.lsn, Lsn(0x16B374D848));
  for (size_t n = 0; n < msg.size(); ++n)
    EXPECT_THROW(fanout::decode_message(bytes(msg.substr(0, n))), Error) << "cut at " << n;
  EXPECT_THROW(fanout::decode_message(bytes(msg + "x")), Error);
}

TEST(FanoutCodec, ChangeBeforeItsTableDefinitionIsRefused) {
  // A record whose 'R' is replaced by a change kind cannot be read as a change to a table
  // no definition named.
  std::string rec = sample_record();
  size_t r = 29;  // the first record, right after the transaction header
  ASSERT_EQ(rec[r], 'R');
  std::string msg = fanout::encode_transactions(std::vector<std::string>{rec});
  std::string bad = msg;
  bad[9 + r] = 'T';  // message header (5) + count (4)
  EXPECT_THROW(fanout::decode_message(bytes(bad)), Error);
}

TEST(FanoutCodec, LargeTransactionInPartsReassembles) {
  std::string rec = sample_record();
  std::vector<std::string> parts = fanout::encode_parts(Lsn(0x1000), rec, 40);
  ASSERT_GT(parts.size(), 3u);
  std::string whole;
  for (size_t i = 0; i < parts.size(); ++i) {
    EXPECT_LE(parts[i].size(), 40u);
    Message m = fanout::decode_message(bytes(parts[i]));
    ASSERT_EQ(m.kind, Message::Kind::kPart);
    EXPECT_EQ(m.lsn, Lsn(0x1000));
    EXPECT_EQ(m.part_index, i);
    EXPECT_EQ(m.part_count, parts.size());
    whole += m.part;
  }
  EXPECT_EQ(whole, rec);
  fanout::Transaction t = fanout::decode_transaction(bytes(whole));
  EXPECT_EQ(t.changes.size(), 5u);
}

TEST(FanoutCodec, ResyncMarkerRoundTrips) {
  Message m = fanout::decode_message(bytes(fanout::encode_tables_resynced(Lsn(0xABCDEF))));
  EXPECT_EQ(m.kind, Message::Kind::kTablesResynced);
  EXPECT_EQ(m.lsn, Lsn(0xABCDEF));
}

TEST(FanoutCodec, SnapshotMessagesRoundTrip) {
  fanout::SnapshotHeader h;
  h.lsn = Lsn(0x5000);
  h.system_id = "7312345678901234567";
  h.database = "shop";
  h.slot = "pgseed_hub";
  h.publication = "p";
  h.timeline = 2;
  h.marker_seq = 41;
  h.tables = {orders(), keyless()};
  fanout::SnapshotMessage hm = fanout::decode_snapshot_message(bytes(fanout::encode_snapshot_header(h)));
  ASSERT_EQ(hm.kind, fanout::SnapshotMessage::Kind::kHeader);
  EXPECT_EQ(hm.header.lsn, h.lsn);
  EXPECT_EQ(hm.header.system_id, h.system_id);
  EXPECT_EQ(hm.header.slot, "pgseed_hub");
  EXPECT_EQ(hm.header.timeline, 2u);
  EXPECT_EQ(hm.header.marker_seq, 41u);
  ASSERT_EQ(hm.header.tables.size(), 2u);
  EXPECT_TRUE(hm.header.tables[0].same_columns(orders()));

  std::string chunk = fanout::begin_snapshot_chunk(h.lsn, 16384);
  Row a = {Datum::of("1"), Datum::null(), Datum::of("1.00")};
  Row b = {Datum::of("2"), Datum::of("x\ny"), Datum::null()};
  fanout::add_snapshot_row(chunk, a);
  fanout::add_snapshot_row(chunk, b);
  fanout::finish_snapshot_chunk(chunk, 2);
  fanout::SnapshotMessage cm = fanout::decode_snapshot_message(bytes(chunk));
  ASSERT_EQ(cm.kind, fanout::SnapshotMessage::Kind::kChunk);
  EXPECT_EQ(cm.chunk.table_oid, 16384u);
  ASSERT_EQ(cm.chunk.rows.size(), 2u);
  EXPECT_EQ(cm.chunk.rows[1][1].text, "x\ny");
  EXPECT_TRUE(cm.chunk.rows[1][2].is_null());
  for (size_t n = 0; n < chunk.size(); ++n)
    EXPECT_THROW(fanout::decode_snapshot_message(bytes(chunk.substr(0, n))), Error) << n;
  std::string liar = chunk;
  fanout::finish_snapshot_chunk(liar, 0x7fffffff);  // more rows than bytes
  EXPECT_THROW(fanout::decode_snapshot_message(bytes(liar)), Error);

  fanout::SnapshotMessage em = fanout::decode_snapshot_message(bytes(fanout::encode_snapshot_end({h.lsn, 17, 4})));
  ASSERT_EQ(em.kind, fanout::SnapshotMessage::Kind::kEnd);
  EXPECT_EQ(em.end.header_seq, 17u);
  EXPECT_EQ(em.end.chunks, 4u);
}

TEST(NatsAddress, ParsesServerListsAndStreams) {
  nats::NatsAddress a = nats::parse_nats_address("nats://h1:4222,h2:4223,nats://h3", false);
  EXPECT_EQ(a.servers, (std::vector<std::string>{"nats://h1:4222", "nats://h2:4223", "nats://h3"}));
  EXPECT_TRUE(a.stream.empty());
  nats::NatsAddress b = nats::parse_nats_address("nats://u:secret@h1:4222,h2:1/shop_1", true);
  EXPECT_EQ(b.stream, "shop_1");
  EXPECT_EQ(b.servers.size(), 2u);
  EXPECT_EQ(b.display(), "nats://h1:4222,h2:1");  // no user, no password
  for (const char* bad : {"h1:4222", "nats://", "nats://h1:0", "nats://h1:99999", "nats://h1:x",
                          "nats://h1,,h2"})
    EXPECT_THROW(nats::parse_nats_address(bad, false), Error) << bad;
  for (const char* bad : {"nats://h1:4222", "nats://h1:4222/", "nats://h1:4222/a.b", "nats://h1/a b"})
    EXPECT_THROW(nats::parse_nats_address(bad, true), Error) << bad;
  try {
    nats::parse_nats_address("nats://u:secret@h1:x", false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pgseed
