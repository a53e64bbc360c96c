// Catalog queries on the source: server checks, publications and the tables they publish.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "model/identifiers.h"
#include "pgseed/lsn.h"
#include "model/table_def.h"

namespace pgseed::pg {

// A table as the publication publishes it.
struct PublishedTable {
  TableDef def;            // published columns only (column lists), key, types
  std::string row_filter;  // the publication's row filter (WHERE expression), or empty
  int64_t estimated_rows = -1;   // the catalog's estimate (reltuples), -1 when unknown
  int64_t estimated_bytes = -1;  // heap size on disk
  bool partitioned = false;      // a partitioned table: its rows are in its partitions
  char relkind = 'r';            // pg_class.relkind: 'r' regular table, 'p' partitioned
  int64_t heap_bytes = -1;       // pg_relation_size of the table itself (no partitions, no
                                 // inheritance children, unlike estimated_bytes)
  int64_t heap_blocks = -1;      // heap_bytes / block_size
  // Per column of def.columns: whether its base type's cast to text is a function (bool's,
  // bpchar's, inet's, a user's CREATE CAST ... WITH FUNCTION) rather than its output
  // function, so that `col::text` may not print what a text COPY prints.
  std::vector<bool> casts_to_text_by_function;
  bool generated_columns = false;  // a published column is generated (PostgreSQL 18 can publish them)
};

// Heap blocks [first, end) of a table, for copying it in parts. end == 0: open-ended, to
// the end of the table as the snapshot sees it (rows in blocks added since are invisible
// to the snapshot anyway).
struct BlockRange {
  uint32_t first = 0;
  uint32_t end = 0;
};

// Checks what a sync needs of the source: server version (15+), wal_level = logical,
// a role with REPLICATION. Throws Error with one line saying what to change.
void check_source(Connection& conn);

bool publication_exists(Connection& conn, const std::string& name);

// A slot as pg_replication_slots shows it, with its distance from the server's WAL.
struct SlotStatus {
  bool active = false;
  std::string confirmed_flush_lsn;  // "" when NULL
  std::string restart_lsn;          // "" when NULL
  std::string wal_status;           // reserved/extended/unreserved/lost; "" when NULL
  int64_t lag_bytes = 0;            // current WAL position - `applied`, at least 0
  int64_t retained_bytes = -1;      // current WAL position - restart_lsn; -1 when unknown
  std::string slot_type;            // "logical" or "physical"
  std::string plugin;               // the output plugin ("" for a physical slot)
  // A walsender streams from the slot now, and its replay_lag (from pgseed's flush
  // reports); its row is visible to its own role and to pg_read_all_stats only.
  bool streaming = false;
  double replay_lag_seconds = 0;
  // PostgreSQL 17+ (false before): made with FAILOVER (kept in sync on standbys that have
  // sync_replication_slots = on), and, on such a standby, a copy synchronized from the
  // primary (which a promotion keeps; `temporary` is true until it is safe to use).
  bool failover = false;
  bool synced = false;
  bool temporary = false;
};
// `slot`'s status (lag measured from `applied`), or nullopt when it does not exist.
std::optional<SlotStatus> slot_status(Connection& conn, const std::string& slot, Lsn applied);
bool slot_exists(Connection& conn, const std::string& slot, bool* active = nullptr);
// Whether physical slot `slot` holds an xmin (a standby's hot_standby_feedback reached the
// primary through it); nullopt when there is no such slot.
std::optional<bool> slot_holds_xmin(Connection& conn, const std::string& slot);

// The tables of `publication`, with their published columns and keys, read in the
// connection's current transaction (the exported snapshot, when called by the copy).
std::vector<PublishedTable> published_tables(Connection& conn, const std::string& publication);
// The same outside any transaction (the catalog as of now): read again when a table
// dropped meanwhile fails the read.
std::vector<PublishedTable> published_tables_now(Connection& conn, const std::string& publication);

// Which of these OIDs' tables `publication` publishes now, in their order (one query for
// all; a table that no longer exists costs a pg_class lookup only).
std::vector<uint32_t> published_among(Connection& conn, const std::string& publication,
                                      const std::vector<uint32_t>& oids);

// In a transaction that imported an exported snapshot: locks `t` (ACCESS SHARE, held to
// the transaction's end, so that no DDL can change it from now on) and tells whether the
// table is still the one the snapshot sees — not renamed, dropped, rewritten (ALTER
// COLUMN TYPE, a volatile default, VACUUM FULL) or truncated since. A copy made under
// an older snapshot than such DDL reads wrong rows (a rewritten table is empty to it) or
// fails on a renamed column. Returns false when it is not.
bool unchanged_since_snapshot(Connection& conn, const PublishedTable& t);

// Whether an error of a COPY under an exported snapshot means that DDL changed the
// table after the snapshot (a column or the table renamed or dropped): copy it again
// under a newer snapshot.
bool changed_since_snapshot(const Error& e);

// One published table by source OID (a table added to the publication later).
std::vector<PublishedTable> published_tables_by_oid(Connection& conn, const std::string& publication,
                                                    uint32_t oid);

// Drops `slot`, waiting up to `wait_seconds` for a walsender that still holds it to exit.
// Does nothing when the slot does not exist.
void drop_slot(Connection& conn, const std::string& slot, int wait_seconds = 10);

// Completes a column's definition from the catalog: type name, base type, storage class.
void describe_type(Connection& conn, ColumnDef& col, int32_t type_mod);

// The value rows that existed before `ADD COLUMN ... DEFAULT <constant>` show for the
// column (attmissingval), in text form; nullopt when there is none.
std::optional<std::string> missing_value(Connection& conn, uint32_t relid, const std::string& column);

// SELECT list and FROM/WHERE for copying `t`: COPY (SELECT ...) TO STDOUT. With `range`,
// only the row versions stored in those heap blocks (a TID Range Scan, PostgreSQL 14+);
// ranges that tile [0, end of table) read each row exactly once under one snapshot.
// With `binary_casts` (one flag per column): in binary format, the flagged columns cast to
// text in the SELECT.
std::string copy_query(const PublishedTable& t, std::optional<BlockRange> range = std::nullopt,
                       const std::vector<bool>* binary_casts = nullptr);

// What a later run needs to know of the store's publication: does it exist, does it
// publish all tables, and the OIDs of the tables it lists (pg_publication_rel).
struct PublicationInfo {
  bool exists = false;
  bool all_tables = false;
  bool has_schemas = false;  // FOR TABLES IN SCHEMA
  std::vector<uint32_t> relids;
};
PublicationInfo publication_info(Connection& conn, const std::string& publication);

// The OID of table `name`, or 0 when the source has no such table.
uint32_t table_oid(Connection& conn, const QualifiedName& name);

// Tables (leaf partitions included) that `publication` publishes UPDATE or DELETE for and
// that have no replica identity (no primary key under REPLICA IDENTITY DEFAULT, NOTHING,
// or USING INDEX of a dropped index): PostgreSQL refuses UPDATE/DELETE on them while they
// are published. Names as SQL writes them, sorted.
std::vector<std::string> tables_without_replica_identity(Connection& conn,
                                                         const std::string& publication);

// Inactive logical slots named pgseed_* other than `except`, with the WAL each retains
// on the source (bytes; -1 when unknown).
struct SlotRetention {
  std::string slot;
  std::string database;
  int64_t retained_bytes = -1;
};
std::vector<SlotRetention> inactive_pgseed_slots(Connection& conn, const std::string& except);

// SQL for the server's current WAL position (the replay position on a standby).
std::string current_wal_lsn_sql();
// SQL for the WAL position the server has flushed (the replay position on a standby: a
// walsender there decodes up to what was replayed).
std::string current_wal_flush_lsn_sql();

// Whether the server is a hot standby (pg_is_in_recovery()).
bool in_recovery(Connection& conn);

}  // namespace pgseed::pg
