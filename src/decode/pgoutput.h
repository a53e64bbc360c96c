// pgoutput messages (PostgreSQL logical replication protocol, versions 1 and 2): one
// small struct per message and one decode function. Pure decoding: no I/O, no state.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "model/row.h"
#include "pgseed/lsn.h"

namespace pgseed {

// Timestamps (commit_time) are microseconds since the PostgreSQL epoch, 2000-01-01 00:00 UTC.
// `xid` fields of Relation/TypeMsg/Insert/Update/Delete/Truncate/LogicalMessage are set only
// for messages inside a streamed transaction (between StreamStart and StreamStop, protocol
// version 2); otherwise they are 0.

// 'B': a transaction's changes follow, up to its Commit.
struct Begin {
  Lsn final_lsn;  // LSN of the commit record: the transaction's position
  int64_t commit_time = 0;
  uint32_t xid = 0;
};

// 'C': end of the transaction opened by the last Begin.
struct Commit {
  uint8_t flags = 0;  // unused by PostgreSQL 15, always 0
  Lsn commit_lsn;
  Lsn end_lsn;  // end of the commit record: where to resume after this transaction
  int64_t commit_time = 0;
};

// 'O': the transaction was replayed from another node (replication origin).
struct Origin {
  Lsn lsn;  // commit LSN on the origin server
  std::string name;
};

struct RelationColumn {
  bool key = false;  // part of the replica identity
  std::string name;
  uint32_t type_oid = 0;
  int32_t type_mod = -1;
};

// 'R': the shape of a table, sent before the first change to it in a session and again
// after it changes. Columns are in the order of every later tuple of this relation.
struct Relation {
  uint32_t xid = 0;
  uint32_t oid = 0;
  std::string nspname;
  std::string relname;
  char replica_identity = 0;  // 'd' default, 'n' nothing, 'f' full, 'i' index
  std::vector<RelationColumn> columns;
};

// 'Y': a non-built-in type used by a following relation's columns.
struct TypeMsg {
  uint32_t xid = 0;
  uint32_t oid = 0;
  std::string nspname;
  std::string name;
};

// Rows: one Datum per relation column; Datum::text views point into the decoded buffer.

// 'I'
struct Insert {
  uint32_t xid = 0;
  uint32_t relid = 0;
  Row new_tuple;
};

// 'U'. old_kind 'K': old_tuple holds the old replica identity key (the key changed; other
// columns are null); 'O': the whole old row (REPLICA IDENTITY FULL); 0: no old tuple was
// sent, the key is in new_tuple. Unchanged TOASTed values are Datum::unchanged().
struct Update {
  uint32_t xid = 0;
  uint32_t relid = 0;
  char old_kind = 0;
  Row old_tuple;
  Row new_tuple;
};

// 'D'. old_kind is 'K' (key columns set, others null) or 'O' (whole row).
struct Delete {
  uint32_t xid = 0;
  uint32_t relid = 0;
  char old_kind = 0;
  Row old_tuple;
};

// 'T'
struct Truncate {
  uint32_t xid = 0;
  std::vector<uint32_t> relids;
  bool cascade = false;
  bool restart_identity = false;
};

// 'M': pg_logical_emit_message(). A non-transactional one arrives outside Begin/Commit.
struct LogicalMessage {
  uint32_t xid = 0;
  bool transactional = false;
  Lsn lsn;
  std::string prefix;
  std::string content;
};

// 'S': a segment of an in-progress transaction follows, up to StreamStop.
struct StreamStart {
  uint32_t xid = 0;
  bool first_segment = false;
};

// 'E'
struct StreamStop {};

// 'c': the streamed transaction xid committed.
struct StreamCommit {
  uint32_t xid = 0;
  uint8_t flags = 0;
  Lsn commit_lsn;
  Lsn end_lsn;
  int64_t commit_time = 0;
};

// 'A': the streamed (sub)transaction aborted; subxid == xid for the whole transaction.
struct StreamAbort {
  uint32_t xid = 0;
  uint32_t subxid = 0;
};

using PgOutputMessage =
    std::variant<Begin, Commit, Origin, Relation, TypeMsg, Insert, Update, Delete, Truncate,
                 LogicalMessage, StreamStart, StreamStop, StreamCommit, StreamAbort>;

// Decodes one pgoutput message (the payload of one XLogData frame). `in_stream` is true
// between StreamStart and StreamStop, where Relation, Type, Insert, Update, Delete,
// Truncate and Message carry a leading xid. Tuple values must be in text format ('b'
// binary values are not requested by pgseed and are rejected).
// The Datum views in the result point into `data`: keep it alive while they are used.
// Throws pgseed::Error (kDecode) on an unknown message type, a truncated message, bytes
// left over after the message, or a field outside its protocol range; never reads outside
// `data`.
PgOutputMessage decode_pgoutput(std::span<const uint8_t> data, bool in_stream);

}  // namespace pgseed
