// The change stream's messages (version 2; version 1 is read too): source transactions as
// the hub applied them, in commit order, each with its commit LSN, the definitions of the
// tables it changes and its changes. Pure encoding and decoding of bytes;
// src/fanout/ENCODING.md is the reference.
//
// A message is "PGS" + version (2, or 1 from an older hub) + a kind byte:
//   'T' one or more whole transactions (u32 count, then each Transaction record);
//   'P' one part of a transaction too large for one message (u64 commit LSN, u32 part
//       index, u32 part count, then that slice of the Transaction record's bytes);
//   'S' the hub copied tables again (a resync, a table added) at u64 point: the changes
//       after it assume the hub's store as a snapshot at or after that point holds it;
//   'L' (version 2) the hub's position: every transaction that committed before u64 LSN
//       and that the hub stores is in a message before this one.
// Decoding never reads outside its input; a malformed message throws Error(kDecode).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/row.h"
#include "model/table_def.h"
#include "pgseed/lsn.h"

namespace pgseed::fanout {

// The version written; decode_message reads kOldestTxnFormatVersion up to it (version 2 is
// version 1 and the position message).
inline constexpr uint8_t kTxnFormatVersion = 2;
inline constexpr uint8_t kOldestTxnFormatVersion = 1;

struct Change {
  char kind = 0;        // 'I' insert, 'U' update, 'D' delete, 'T' truncate
  uint32_t table_oid = 0;
  char old_kind = 0;    // 'U'/'D': 'K' old key, 'O' whole old row, 0 none (as pgoutput)
  Row old_row;
  Row new_row;
};

// One source transaction. Datum views point into the decoded buffer.
struct Transaction {
  Lsn final_lsn;     // start of the commit record (pgoutput Begin.final_lsn): its position
  Lsn end_lsn;       // end of the commit record: the applied LSN once it is stored
  int64_t commit_time = 0;  // microseconds since 2000-01-01 UTC
  std::vector<TableDef> tables;  // the tables its changes name, as the hub's store has them
  std::vector<Change> changes;
};

// Builds one transaction's record as its changes arrive (the changes' Datum views need not
// outlive the call). A table's definition goes in before its first change.
class TxnEncoder {
 public:
  void begin(Lsn final_lsn, int64_t commit_time);
  void insert(const TableDef& t, std::span<const Datum> row);
  void update(const TableDef& t, char old_kind, std::span<const Datum> old_row,
              std::span<const Datum> new_row);
  void remove(const TableDef& t, char old_kind, std::span<const Datum> old_row);
  void truncate(const TableDef& t);
  // Ends the transaction and returns its record; the encoder is ready for the next begin().
  std::string commit(Lsn end_lsn);
  size_t changes() const { return changes_; }
  bool open() const { return open_; }

 private:
  void record(char kind, const TableDef& t);
  std::string buf_;
  std::vector<uint32_t> tables_;
  uint32_t records_ = 0;
  size_t changes_ = 0;
  bool open_ = false;
};

// A message of whole transactions (their records, in commit order).
std::string encode_transactions(std::span<const std::string> records);
// The parts of one transaction record that does not fit a message of `max_bytes`.
std::vector<std::string> encode_parts(Lsn final_lsn, std::string_view record, size_t max_bytes);
// The bytes a message of `records` takes: what encode_transactions returns the size of.
size_t transactions_message_size(size_t records_bytes);
std::string encode_tables_resynced(Lsn point);
std::string encode_position(Lsn position);

struct Message {
  enum class Kind { kTransactions, kPart, kTablesResynced, kPosition } kind = Kind::kTransactions;
  std::vector<Transaction> transactions;  // kTransactions
  // kPart: the transaction's commit LSN; kTablesResynced: the point; kPosition: the hub's
  // position (every stored transaction that committed before it is in an earlier message).
  Lsn lsn;
  uint32_t part_index = 0, part_count = 0;
  std::string_view part;                  // kPart: this slice of the record
};

Message decode_message(std::span<const uint8_t> data);
// A Transaction record, e.g. the parts of one put together.
Transaction decode_transaction(std::span<const uint8_t> record);

}  // namespace pgseed::fanout
