#include "pg/catalog.h"

#include <algorithm>
#include <map>
#include <sstream>

#include <unistd.h>

#include "store/value_codec.h"

namespace pgseed::pg {

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

bool slot_exists(Connection& conn, const std::string& slot, bool* active) {
  Result r = conn.exec_params(
      "SELECT active::text FROM pg_replication_slots WHERE slot_name = $1", {slot});
  if (PQntuples(r.get()) == 0) return false;
  if (active) *active = std::string(PQgetvalue(r.get(), 0, 0)) == "true";
  return true;
}

namespace {

std::vector<PublishedTable> query_tables(Connection& conn, const std::string& publication,
                                         uint32_t only_oid) {
  // Domains resolve to their base type (for the storage class); nested domains too.
  std::map<uint32_t, uint32_t> domain_base;
  {
    Result r = conn.exec("SELECT oid, typbasetype FROM pg_type WHERE typtype = 'd'");
    for (int i = 0; i < PQntuples(r.get()); ++i)
      domain_base[uint32_t(std::stoul(PQgetvalue(r.get(), i, 0)))] =
          uint32_t(std::stoul(PQgetvalue(r.get(), i, 1)));
  }
  auto base_of = [&](uint32_t oid) {
    for (int depth = 0; depth < 32; ++depth) {
      auto it = domain_base.find(oid);
      if (it == domain_base.end()) break;
      oid = it->second;
    }
    return oid;
  };

  std::string sql =
      "SELECT c.oid, pt.schemaname, pt.tablename, coalesce(pt.rowfilter, ''), "
      "       array_to_string(pt.attnames, chr(1)), "
      "       (SELECT coalesce(sum(greatest(r.reltuples, 0)), 0)::bigint FROM pg_class r "
      "        WHERE r.oid IN (SELECT relid FROM pg_partition_tree(c.oid) UNION SELECT c.oid)), "
      "       (SELECT coalesce(sum(pg_relation_size(r.oid)), 0)::bigint FROM pg_class r "
      "        WHERE r.oid IN (SELECT relid FROM pg_partition_tree(c.oid) UNION SELECT c.oid)), "
      "       c.relkind = 'p', c.relkind::text, pg_relation_size(c.oid), "
      "       pg_relation_size(c.oid) / current_setting('block_size')::bigint "
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
  for (int i = 0; i < PQntuples(tables.get()); ++i) {
    PublishedTable t;
    t.def.source_oid = uint32_t(std::stoul(PQgetvalue(tables.get(), i, 0)));
    t.def.schema = PQgetvalue(tables.get(), i, 1);
    t.def.name = PQgetvalue(tables.get(), i, 2);
    t.row_filter = PQgetvalue(tables.get(), i, 3);
    std::string attnames = PQgetvalue(tables.get(), i, 4);
    t.estimated_rows = std::stoll(PQgetvalue(tables.get(), i, 5));
    if (t.estimated_rows <= 0) t.estimated_rows = -1;  // never analyzed: unknown
    t.estimated_bytes = std::stoll(PQgetvalue(tables.get(), i, 6));
    t.partitioned = std::string_view(PQgetvalue(tables.get(), i, 7)) == "t";
    t.relkind = PQgetvalue(tables.get(), i, 8)[0];
    t.heap_bytes = std::stoll(PQgetvalue(tables.get(), i, 9));
    t.heap_blocks = std::stoll(PQgetvalue(tables.get(), i, 10));
    std::vector<std::string> published;
    {
      std::string cur;
      for (char ch : attnames) {
        if (ch == '\1') published.push_back(cur), cur.clear();
        else cur += ch;
      }
      if (!attnames.empty()) published.push_back(cur);
    }

    // Key: the replica identity index if there is one, else the primary key.
    // Generated columns: PostgreSQL 15-17 never publish them (although 15's attnames lists
    // them when there is no column list); 18 publishes stored ones when the publication says
    // so (publish_generated_columns = stored, or a column list naming them), and then
    // attnames lists them and they must be copied too, or rows the stream never touches
    // would lack them.
    Result cols = conn.exec_params(
        "SELECT a.attname, a.atttypid, format_type(a.atttypid, a.atttypmod), "
        "  coalesce((SELECT k.n FROM (SELECT i.indkey FROM pg_index i "
        "              WHERE i.indrelid = a.attrelid AND (i.indisreplident OR i.indisprimary) "
        "              ORDER BY i.indisreplident DESC LIMIT 1) ix, "
        "            unnest(ix.indkey::int2[]) WITH ORDINALITY k(attnum, n) "
        "            WHERE k.attnum = a.attnum), 0), "
        "  a.attgenerated <> '' "
        "FROM pg_attribute a "
        "WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        {std::to_string(t.def.source_oid)}, "reading columns");
    for (int j = 0; j < PQntuples(cols.get()); ++j) {
      ColumnDef c;
      c.name = PQgetvalue(cols.get(), j, 0);
      bool generated = std::string_view(PQgetvalue(cols.get(), j, 4)) == "t";
      if (generated && !generated_published) continue;
      if (!published.empty() &&
          std::find(published.begin(), published.end(), c.name) == published.end())
        continue;  // not in the publication's column list
      c.type_oid = uint32_t(std::stoul(PQgetvalue(cols.get(), j, 1)));
      c.base_type_oid = base_of(c.type_oid);
      c.type_name = PQgetvalue(cols.get(), j, 2);
      c.storage = storage_class_for_type(c.base_type_oid);
      c.key_position = std::stoi(PQgetvalue(cols.get(), j, 3));
      t.def.columns.push_back(std::move(c));
    }
    // A key that is not wholly published cannot identify rows: treat the table as keyless.
    {
      int expected = 0;
      Result k = conn.exec_params(
          "SELECT coalesce((SELECT i.indnkeyatts FROM pg_index i "
          "  WHERE i.indrelid = $1 AND (i.indisreplident OR i.indisprimary) "
          "  ORDER BY i.indisreplident DESC LIMIT 1), 0)",
          {std::to_string(t.def.source_oid)});
      expected = std::stoi(PQgetvalue(k.get(), 0, 0));
      int have = 0;
      for (const auto& c : t.def.columns)
        if (c.key_position > 0) ++have;
      if (have != expected)
        for (auto& c : t.def.columns) c.key_position = 0;
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

std::vector<PublishedTable> published_tables(Connection& conn, const std::string& publication) {
  return query_tables(conn, publication, 0);
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
  col.base_type_oid = *base ? uint32_t(std::stoul(base)) : col.type_oid;
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

std::string copy_query(const PublishedTable& t, std::optional<BlockRange> range) {
  std::string cols;
  for (const auto& c : t.def.columns) cols += (cols.empty() ? "" : ", ") + quote_ident(c.name);
  if (cols.empty()) cols = "NULL";  // cannot happen for a published table, but stay valid
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
  return sql + ") TO STDOUT";
}

}  // namespace pgseed::pg
