#include "pg/catalog.h"

#include <libpq-fe.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <unistd.h>

#include "pg/text_value.h"
#include "model/pg_type.h"

namespace pgseed::pg {

namespace {

// pg_publication_tables opens each table it lists (16+: for its columns): a table dropped
// while a read runs fails it with "could not open relation with OID" (XX000). Outside an
// exported snapshot's transaction, the read made again sees the catalog without it.
template <class Read>
auto read_again_after_ddl(Read read) {
  for (int attempt = 1;; ++attempt) {
    try {
      return read();
    } catch (const Error& e) {
      if (!changed_since_snapshot(e) || attempt >= 10) throw;
    }
  }
}

// Catalog values, parsed strictly (a malformed one is Error(kDecode), never a std::
// exception). NULL reads as `if_null`.
int64_t int_at(const Result& r, int row, int col, const char* what, int64_t if_null) {
  if (PQgetisnull(r.get(), row, col)) return if_null;
  return parse_int64(PQgetvalue(r.get(), row, col), what);
}
uint32_t oid_at(const Result& r, int row, int col, const char* what) {
  return parse_uint32(PQgetvalue(r.get(), row, col), what);
}

}  // namespace

void check_source(Connection& conn) {
  int version = conn.server_version();
  if (version < 150000)
    throw Error(ErrorCategory::kSourceState,
                "the source runs PostgreSQL " + std::to_string(version / 10000) +
                    "; pgseed needs PostgreSQL 15 or later (server_version_num " +
                    std::to_string(version) + ")");
  std::string wal_level = conn.query_value("SHOW wal_level");
  if (wal_level != "logical")
    throw Error(ErrorCategory::kSourceState,
                "the source has wal_level = " + wal_level +
                    "; set wal_level = logical in postgresql.conf and restart the server");
  std::string can = conn.query_value(
      "SELECT (rolreplication OR rolsuper)::text FROM pg_roles WHERE rolname = current_user");
  if (can != "true")
    throw Error(ErrorCategory::kAuthentication,
                "role " + conn.query_value("SELECT current_user") +
                    " lacks the REPLICATION attribute; grant it with: ALTER ROLE " +
                    conn.query_value("SELECT quote_ident(current_user)") + " REPLICATION");
}

bool publication_exists(Connection& conn, const std::string& name) {
  return conn.query_value("SELECT count(*) FROM pg_publication WHERE pubname = $1", {name}) != "0";
}

std::optional<bool> slot_holds_xmin(Connection& conn, const std::string& slot) {
  Result r = conn.exec_params("SELECT (xmin IS NOT NULL)::text FROM pg_replication_slots WHERE slot_name = $1",
                              {slot}, "reading the standby's slot on the primary");
  if (PQntuples(r.get()) == 0) return std::nullopt;
  return std::string_view(PQgetvalue(r.get(), 0, 0)) == "true";
}

bool slot_exists(Connection& conn, const std::string& slot, bool* active) {
  Result r = conn.exec_params(
      "SELECT active::text FROM pg_replication_slots WHERE slot_name = $1", {slot});
  if (PQntuples(r.get()) == 0) return false;
  if (active) *active = std::string(PQgetvalue(r.get(), 0, 0)) == "true";
  return true;
}

std::optional<SlotStatus> slot_status(Connection& conn, const std::string& slot, Lsn applied) {
  std::string now = current_wal_lsn_sql();
  const bool v17 = conn.server_version() >= 170000;
  Result r = conn.exec_params(
      "SELECT s.active::text, coalesce(s.confirmed_flush_lsn::text, ''), "
      "  coalesce(s.restart_lsn::text, ''), coalesce(s.wal_status, ''), "
      "  greatest(pg_wal_lsn_diff(" + now + ", $2::pg_lsn), 0)::bigint, "
      "  coalesce(pg_wal_lsn_diff(" + now + ", s.restart_lsn)::bigint, -1), "
      "  s.slot_type, coalesce(s.plugin, ''), (r.state IS NOT NULL)::text, "
      "  coalesce(extract(epoch FROM r.replay_lag)::float8, 0)::text, " +
          std::string(v17 ? "s.failover::text, s.synced::text, " : "'false', 'false', ") +
          "s.temporary::text "
      "FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid "
      "WHERE s.slot_name = $1",
      {slot, applied.str()}, "reading the slot");
  if (PQntuples(r.get()) != 1) return std::nullopt;
  SlotStatus s;
  s.active = std::string_view(PQgetvalue(r.get(), 0, 0)) == "true";
  s.confirmed_flush_lsn = PQgetvalue(r.get(), 0, 1);
  s.restart_lsn = PQgetvalue(r.get(), 0, 2);
  s.wal_status = PQgetvalue(r.get(), 0, 3);
  s.lag_bytes = int_at(r, 0, 4, "the slot's lag", 0);
  s.retained_bytes = int_at(r, 0, 5, "the WAL the slot retains", -1);
  s.slot_type = PQgetvalue(r.get(), 0, 6);
  s.plugin = PQgetvalue(r.get(), 0, 7);
  s.streaming = s.active && std::string_view(PQgetvalue(r.get(), 0, 8)) == "true";
  s.replay_lag_seconds = std::atof(PQgetvalue(r.get(), 0, 9));
  s.failover = std::string_view(PQgetvalue(r.get(), 0, 10)) == "true";
  s.synced = std::string_view(PQgetvalue(r.get(), 0, 11)) == "true";
  s.temporary = std::string_view(PQgetvalue(r.get(), 0, 12)) == "true";
  return s;
}

namespace {

std::vector<PublishedTable> query_tables(Connection& conn, const std::string& publication,
                                         uint32_t only_oid) {
  // Domains resolve to their base type (for the storage class); nested domains too.
  // And the types whose cast to text is a function (second column 0; a domain's base type
  // never is 0): for the binary copy, which must not cast those to text.
  std::map<uint32_t, uint32_t> domain_base;
  std::set<uint32_t> text_cast_function;
  {
    Result r = conn.exec(
        "SELECT oid, typbasetype FROM pg_type WHERE typtype = 'd' UNION ALL "
        "SELECT castsource, 0 FROM pg_cast "
        "WHERE casttarget = 'pg_catalog.text'::pg_catalog.regtype AND castmethod = 'f'");
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      uint32_t base = oid_at(r, i, 1, "a domain's base type");
      if (base == 0)
        text_cast_function.insert(oid_at(r, i, 0, "a cast's source type"));
      else
        domain_base[oid_at(r, i, 0, "a domain's oid")] = base;
    }
  }
  auto base_of = [&](uint32_t oid) {
    for (int depth = 0; depth < 32; ++depth) {
      auto it = domain_base.find(oid);
      if (it == domain_base.end()) break;
      oid = it->second;
    }
    return oid;
  };

  // A table's estimates sum over its partition tree (itself, for a plain table), looked
  // up by oid: `r.oid IN (subquery)` read the whole of pg_class once per table, which cost
  // seconds per read with a few hundred published tables (bench.sh's migration-heavy case).
  std::string sql =
      "SELECT c.oid, pt.schemaname, pt.tablename, coalesce(pt.rowfilter, ''), "
      "       array_to_string(pt.attnames, chr(1)), "
      "       (SELECT coalesce(sum(greatest(r.reltuples, 0)), 0)::bigint FROM pg_class r "
      "        WHERE r.oid = ANY (ARRAY(SELECT relid FROM pg_partition_tree(c.oid)) || c.oid)), "
      "       (SELECT coalesce(sum(pg_relation_size(r.oid)), 0)::bigint FROM pg_class r "
      "        WHERE r.oid = ANY (ARRAY(SELECT relid FROM pg_partition_tree(c.oid)) || c.oid)), "
      "       c.relkind = 'p', c.relkind::text, pg_relation_size(c.oid), "
      "       pg_relation_size(c.oid) / current_setting('block_size')::bigint, c.relfilenode "
      "FROM pg_publication_tables pt "
      "JOIN pg_namespace n ON n.nspname = pt.schemaname "
      "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
      "WHERE pt.pubname = $1";
  std::vector<std::optional<std::string>> params = {publication};
  if (only_oid) {
    sql += " AND c.oid = $2";
    params.push_back(std::to_string(only_oid));
  }
  sql += " ORDER BY 7 DESC, 2, 3";  // largest first: the longest copy starts first
  Result tables = conn.exec_params(sql, params, "reading the publication's tables");

  const bool generated_published = conn.server_version() >= 180000;
  std::vector<PublishedTable> out;
  std::vector<std::vector<std::string>> published_by_table;  // column lists, as out
  for (int i = 0; i < PQntuples(tables.get()); ++i) {
    PublishedTable t;
    t.def.source_oid = oid_at(tables, i, 0, "a table's oid");
    t.def.schema = PQgetvalue(tables.get(), i, 1);
    t.def.name = PQgetvalue(tables.get(), i, 2);
    t.row_filter = PQgetvalue(tables.get(), i, 3);
    std::string attnames = PQgetvalue(tables.get(), i, 4);
    t.estimated_rows = int_at(tables, i, 5, "a table's row estimate", -1);
    if (t.estimated_rows <= 0) t.estimated_rows = -1;  // never analyzed: unknown
    t.estimated_bytes = int_at(tables, i, 6, "a table's size", -1);
    t.partitioned = std::string_view(PQgetvalue(tables.get(), i, 7)) == "t";
    t.relkind = PQgetvalue(tables.get(), i, 8)[0];
    // pg_relation_size() is NULL for a table dropped after its catalog row was read: its
    // size is unknown (-1; such a table is not split, and its copy then finds it gone).
    t.heap_bytes = int_at(tables, i, 9, "a table's heap size", -1);
    t.heap_blocks = int_at(tables, i, 10, "a table's heap blocks", -1);
    t.def.relfilenode = oid_at(tables, i, 11, "a table's relfilenode");
    std::vector<std::string> published;
    {
      std::string cur;
      for (char ch : attnames) {
        if (ch == '\1') published.push_back(cur), cur.clear();
        else cur += ch;
      }
      if (!attnames.empty()) published.push_back(cur);
    }

    t.def.columns.clear();
    published_by_table.push_back(std::move(published));
    out.push_back(std::move(t));
  }
  if (out.empty()) return out;

  // The columns of every table in two queries (not two a table: a publication of
  // hundreds of tables is read in one round trip each).
  // Key: the replica identity index if there is one, else the primary key.
  // Generated columns: PostgreSQL 15-17 never publish them (although 15's attnames lists
  // them when there is no column list); 18 publishes stored ones when the publication says
  // so (publish_generated_columns = stored, or a column list naming them), and then
  // attnames lists them and they must be copied too, or rows the stream never touches
  // would lack them.
  std::string oids = "{";
  std::map<uint32_t, size_t> index_of;
  for (size_t i = 0; i < out.size(); ++i) {
    oids += (i ? "," : "") + std::to_string(out[i].def.source_oid);
    index_of[out[i].def.source_oid] = i;
  }
  oids += "}";
  Result cols = conn.exec_params(
      "SELECT a.attrelid, a.attname, a.atttypid, format_type(a.atttypid, a.atttypmod), "
      "  coalesce((SELECT k.n FROM (SELECT i.indkey FROM pg_index i "
      "              WHERE i.indrelid = a.attrelid AND (i.indisreplident OR i.indisprimary) "
      "              ORDER BY i.indisreplident DESC LIMIT 1) ix, "
      "            unnest(ix.indkey::int2[]) WITH ORDINALITY k(attnum, n) "
      "            WHERE k.attnum = a.attnum), 0), "
      "  a.attgenerated <> '', a.attnum, a.atttypmod "
      "FROM pg_attribute a "
      "WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped "
      "ORDER BY a.attrelid, a.attnum",
      {oids}, "reading columns");
  for (int j = 0; j < PQntuples(cols.get()); ++j) {
    auto it = index_of.find(oid_at(cols, j, 0, "a column's table"));
    if (it == index_of.end()) continue;
    PublishedTable& t = out[it->second];
    const std::vector<std::string>& published = published_by_table[it->second];
    ColumnDef c;
    c.name = PQgetvalue(cols.get(), j, 1);
    bool generated = std::string_view(PQgetvalue(cols.get(), j, 5)) == "t";
    if (generated && !generated_published) continue;
    if (!published.empty() &&
        std::find(published.begin(), published.end(), c.name) == published.end())
      continue;  // not in the publication's column list
    c.type_oid = oid_at(cols, j, 2, "a column's type");
    c.base_type_oid = base_of(c.type_oid);
    c.type_name = PQgetvalue(cols.get(), j, 3);
    c.storage = storage_class_for_type(c.base_type_oid);
    c.key_position = int(int_at(cols, j, 4, "a column's key position", 0));
    c.attnum = int(int_at(cols, j, 6, "a column's attnum", 0));
    c.type_mod = int32_t(int_at(cols, j, 7, "a column's type modifier", -1));
    t.casts_to_text_by_function.push_back(text_cast_function.count(c.base_type_oid) > 0);
    t.generated_columns |= generated;
    t.def.columns.push_back(std::move(c));
  }
  // A key that is not wholly published cannot identify rows: treat the table as keyless.
  Result keys = conn.exec_params(
      "SELECT c.oid, coalesce((SELECT i.indnkeyatts FROM pg_index i "
      "  WHERE i.indrelid = c.oid AND (i.indisreplident OR i.indisprimary) "
      "  ORDER BY i.indisreplident DESC LIMIT 1), 0) "
      "FROM unnest($1::oid[]) c(oid)",
      {oids}, "reading keys");
  for (int j = 0; j < PQntuples(keys.get()); ++j) {
    auto it = index_of.find(oid_at(keys, j, 0, "a key's table"));
    if (it == index_of.end()) continue;
    PublishedTable& t = out[it->second];
    int expected = int(int_at(keys, j, 1, "a key's column count", 0));
    int have = 0;
    for (const auto& c : t.def.columns)
      if (c.key_position > 0) ++have;
    if (have != expected)
      for (auto& c : t.def.columns) c.key_position = 0;
  }
  return out;
}

}  // namespace

std::vector<PublishedTable> published_tables(Connection& conn, const std::string& publication) {
  return query_tables(conn, publication, 0);
}

std::vector<PublishedTable> published_tables_now(Connection& conn, const std::string& publication) {
  return read_again_after_ddl([&] { return query_tables(conn, publication, 0); });
}

std::vector<uint32_t> published_among(Connection& conn, const std::string& publication,
                                      const std::vector<uint32_t>& oids) {
  if (oids.empty()) return {};
  std::string list = "{";
  for (size_t i = 0; i < oids.size(); ++i) list += (i ? "," : "") + std::to_string(oids[i]);
  list += "}";
  // Tables that no longer exist (created and dropped since: the common case of a
  // migration-heavy stream) are answered from pg_class alone: the publication's view is
  // read only for the live ones (pg_publication_tables lists every table of a FOR ALL
  // TABLES publication).
  std::string found = read_again_after_ddl([&] { return conn.query_value(
      "SELECT coalesce(string_agg(l.oid::text, ',' ORDER BY l.ord), '') FROM "
      "(SELECT c.oid, c.relname, n.nspname, o.ord FROM unnest($2::oid[]) WITH ORDINALITY o(oid, ord) "
      "  JOIN pg_class c ON c.oid = o.oid JOIN pg_namespace n ON n.oid = c.relnamespace) l "
      "WHERE EXISTS (SELECT 1 FROM pg_publication_tables pt "
      "  WHERE pt.pubname = $1 AND pt.schemaname = l.nspname AND pt.tablename = l.relname)",
      {publication, list}); });
  std::vector<uint32_t> out;
  for (size_t pos = 0; pos < found.size();) {
    size_t end = found.find(',', pos);
    if (end == std::string::npos) end = found.size();
    out.push_back(parse_uint32(std::string_view(found).substr(pos, end - pos), "a published table's oid"));
    pos = end + 1;
  }
  return out;
}

bool unchanged_since_snapshot(Connection& conn, const PublishedTable& t) {
  // In a savepoint: a failed LOCK must not end the snapshot's transaction.
  conn.exec("SAVEPOINT pgseed_lock", "locking a table to copy");
  try {
    conn.exec("LOCK TABLE ONLY " + t.def.qualified() + " IN ACCESS SHARE MODE", "locking a table to copy");
  } catch (const Error& e) {
    conn.exec("ROLLBACK TO SAVEPOINT pgseed_lock", "locking a table to copy");
    conn.exec("RELEASE SAVEPOINT pgseed_lock", "locking a table to copy");
    if (changed_since_snapshot(e)) return false;
    throw;
  }
  conn.exec("RELEASE SAVEPOINT pgseed_lock", "locking a table to copy");
  // pg_class as a query reads it is the snapshot's; pg_relation_filenode() reads the
  // current catalog (the lock has just brought it up to date).
  return conn.query_value(
             "SELECT (coalesce(pg_relation_filenode(c.oid), 0) = c.relfilenode "
             "        AND to_regclass($2) = c.oid)::text "
             "FROM pg_class c WHERE c.oid = $1",
             {std::to_string(t.def.source_oid), t.def.qualified()}) == "true";
}

bool changed_since_snapshot(const Error& e) {
  // 42P01 undefined_table, 42703 undefined_column, 42P10 invalid_column_reference; and
  // XX000, which is what a function that opens a relation by OID (pg_partition_tree,
  // format_type of a dropped type, ...) raises for a table dropped after the snapshot
  // ("could not open relation with OID ..."): the read is made again, at most a few times.
  return e.sqlstate() == "42P01" || e.sqlstate() == "42703" || e.sqlstate() == "42P10" ||
         e.sqlstate() == "XX000";
}

std::vector<PublishedTable> published_tables_by_oid(Connection& conn,
                                                    const std::string& publication, uint32_t oid) {
  return query_tables(conn, publication, oid);
}

void drop_slot(Connection& conn, const std::string& slot, int wait_seconds) {
  for (int i = 0;; ++i) {
    bool active = false;
    if (!slot_exists(conn, slot, &active)) return;
    if (!active || i >= wait_seconds * 10) {
      conn.exec_params("SELECT pg_drop_replication_slot($1)", {slot},
                       ("dropping replication slot " + slot).c_str());
      return;
    }
    usleep(100000);
  }
}

void describe_type(Connection& conn, ColumnDef& col, int32_t type_mod) {
  Result r = conn.exec_params(
      "WITH RECURSIVE t(oid, base) AS ("
      "  SELECT oid, typbasetype FROM pg_type WHERE oid = $1::oid"
      "  UNION ALL SELECT p.oid, p.typbasetype FROM pg_type p JOIN t ON p.oid = t.base"
      "  WHERE t.base <> 0) "
      "SELECT format_type($1::oid, $2::int), (SELECT oid FROM t WHERE base = 0 LIMIT 1)",
      {std::to_string(col.type_oid), std::to_string(type_mod)}, "reading a column type");
  col.type_name = PQgetvalue(r.get(), 0, 0);
  const char* base = PQgetvalue(r.get(), 0, 1);
  col.base_type_oid = *base ? parse_uint32(base, "a column's base type") : col.type_oid;
  col.storage = storage_class_for_type(col.base_type_oid);
}

std::optional<std::string> missing_value(Connection& conn, uint32_t relid, const std::string& column) {
  Result t = conn.exec_params(
      "SELECT format_type(atttypid, atttypmod), atthasmissing::text FROM pg_attribute "
      "WHERE attrelid = $1 AND attname = $2 AND NOT attisdropped",
      {std::to_string(relid), column});
  if (PQntuples(t.get()) == 0 || std::string(PQgetvalue(t.get(), 0, 1)) != "true") return std::nullopt;
  // attmissingval is a one-element array of the column's type. The element is returned
  // as is, so that libpq gives its output function's text (a cast to text differs for
  // some types: true::text is 'true', boolout gives 't').
  Result v = conn.exec_params("SELECT ((attmissingval::text)::" + std::string(PQgetvalue(t.get(), 0, 0)) +
                                  "[])[1] FROM pg_attribute WHERE attrelid = $1 AND attname = $2",
                              {std::to_string(relid), column}, "reading a column default");
  if (PQntuples(v.get()) == 0 || PQgetisnull(v.get(), 0, 0)) return std::nullopt;
  return std::string(PQgetvalue(v.get(), 0, 0));
}

std::string copy_query(const PublishedTable& t, std::optional<BlockRange> range,
                       const std::vector<bool>* binary_casts) {
  std::string cols;
  bool casts = false;
  for (size_t i = 0; i < t.def.columns.size(); ++i) {
    cols += (cols.empty() ? "" : ", ") + quote_ident(t.def.columns[i].name);
    if (binary_casts && i < binary_casts->size() && (*binary_casts)[i]) {
      cols += "::pg_catalog.text";
      casts = true;
    }
  }
  const char* format = binary_casts ? " TO STDOUT (FORMAT binary)" : " TO STDOUT";
  // A plain table read whole, its columns as they are: `COPY t (columns)`, which reads the
  // rows `SELECT ... FROM ONLY t` reads (not its inheritance children) with no query to
  // plan or project, the server's cheapest path (a copy of many small tables planned a
  // query per table). Generated columns cannot be named in it.
  if (t.relkind == 'r' && !t.partitioned && t.row_filter.empty() && !range && !casts &&
      !t.def.columns.empty() && !t.generated_columns)
    return "COPY " + t.def.qualified() + " (" + cols + ")" + format;
  // A table without columns (CREATE TABLE t ()) is read as `SELECT FROM t`: one empty
  // line per row, which is what such a row is.
  // ONLY: a plain table's inheritance children are tables of their own, whose changes
  // pgoutput sends under their own relation (as `COPY parent TO STDOUT` reads the parent's
  // rows only). A partitioned root published via the root is read with its partitions.
  std::string sql = "COPY (SELECT " + cols + " FROM " + (t.partitioned ? "" : "ONLY ") +
                    t.def.qualified();
  std::vector<std::string> where;
  if (!t.row_filter.empty()) where.push_back("(" + t.row_filter + ")");
  if (range) {
    // Block numbers, not row counts: a row version's ctid is (block, offset), so
    // '(first,0)' <= ctid < '(end,0)' is every version stored in blocks [first, end).
    if (range->first > 0) where.push_back("ctid >= '(" + std::to_string(range->first) + ",0)'::tid");
    if (range->end > 0) where.push_back("ctid < '(" + std::to_string(range->end) + ",0)'::tid");
  }
  for (size_t i = 0; i < where.size(); ++i) sql += (i == 0 ? " WHERE " : " AND ") + where[i];
  return sql + ")" + format;
}

std::string current_wal_lsn_sql() {
  return "(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)";
}

std::string current_wal_flush_lsn_sql() {
  return "(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_flush_lsn() END)";
}

bool in_recovery(Connection& conn) { return conn.query_value("SELECT pg_is_in_recovery()") == "t"; }

PublicationInfo publication_info(Connection& conn, const std::string& publication) {
  PublicationInfo info;
  Result r = conn.exec_params(
      "SELECT p.puballtables::text, "
      "  EXISTS (SELECT 1 FROM pg_publication_namespace pn WHERE pn.pnpubid = p.oid)::text, "
      "  coalesce((SELECT string_agg(pr.prrelid::text, ',') FROM pg_publication_rel pr "
      "            WHERE pr.prpubid = p.oid), '') "
      "FROM pg_publication p WHERE p.pubname = $1",
      {publication}, "reading the publication");
  if (PQntuples(r.get()) == 0) return info;
  info.exists = true;
  info.all_tables = std::string(PQgetvalue(r.get(), 0, 0)) == "true";
  info.has_schemas = std::string(PQgetvalue(r.get(), 0, 1)) == "true";
  std::stringstream ids(PQgetvalue(r.get(), 0, 2));
  for (std::string id; std::getline(ids, id, ',');)
    if (!id.empty()) info.relids.push_back(uint32_t(std::stoul(id)));
  return info;
}

uint32_t table_oid(Connection& conn, const QualifiedName& name) {
  Result r = conn.exec_params(
      "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
      {name.schema, name.name}, "looking up a table");
  return PQntuples(r.get()) == 0 ? 0 : uint32_t(std::stoul(PQgetvalue(r.get(), 0, 0)));
}

std::vector<std::string> tables_without_replica_identity(Connection& conn,
                                                         const std::string& publication) {
  // The leaves of partitioned tables count: UPDATE and DELETE run on them, and PostgreSQL
  // checks the replica identity of the partition it modifies.
  Result r = read_again_after_ddl([&] { return conn.exec_params(
      "WITH published AS ("
      "  SELECT c.oid FROM pg_publication p"
      "  JOIN pg_publication_tables pt ON pt.pubname = p.pubname"
      "  JOIN pg_namespace n ON n.nspname = pt.schemaname"
      "  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename"
      "  WHERE p.pubname = $1 AND (p.pubupdate OR p.pubdelete)), "
      "leaves AS ("
      "  SELECT coalesce(t.relid, p.oid) AS relid FROM published p"
      "  LEFT JOIN LATERAL pg_partition_tree(p.oid) t ON true"
      "  WHERE t.relid IS NULL OR t.isleaf) "
      "SELECT DISTINCT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name "
      "FROM leaves l JOIN pg_class c ON c.oid = l.relid JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relreplident = 'n'"
      "   OR (c.relreplident = 'd' AND NOT EXISTS ("
      "        SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))"
      "   OR (c.relreplident = 'i' AND NOT EXISTS ("
      "        SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)) "
      "ORDER BY name",
      {publication}, "checking the replica identity of published tables"); });
  std::vector<std::string> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(PQgetvalue(r.get(), i, 0));
  return out;
}

std::vector<SlotRetention> inactive_pgseed_slots(Connection& conn, const std::string& except) {
  Result r = conn.exec_params(
      "SELECT slot_name, coalesce(database, ''), "
      "  coalesce(pg_wal_lsn_diff(" + current_wal_lsn_sql() + ", restart_lsn)::bigint, -1) "
      "FROM pg_replication_slots "
      "WHERE slot_type = 'logical' AND NOT active AND NOT temporary "
      "  AND slot_name LIKE 'pgseed\\_%' AND slot_name <> $1 "
      // This database's: replicas of other databases are their own owners' business
      // (and a busy cluster's other pgseed users would make every sync warn).
      "  AND database = current_database() "
      "ORDER BY 3 DESC, 1",
      {except}, "listing replication slots");
  std::vector<SlotRetention> out;
  for (int i = 0; i < PQntuples(r.get()); ++i)
    out.push_back({PQgetvalue(r.get(), i, 0), PQgetvalue(r.get(), i, 1),
                   int_at(r, i, 2, "a slot's retained WAL", -1)});
  return out;
}

}  // namespace pgseed::pg
