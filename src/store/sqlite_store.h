// SqliteStore: the default store, one SQLite file (WAL mode) per replica.
//
// Layout (DESIGN.md, "SQLite store"): one SQLite table per source table, named like the
// source table (`orders` for public.orders, `"sales.orders"` for other schemas), with the
// source's key as its primary key; metadata in `_pgseed_state` (key/value state),
// `_pgseed_tables` and `_pgseed_columns` (original PostgreSQL types).
#pragma once

#include <memory>
#include <string>

#include "store/store.h"

namespace pgseed {

std::unique_ptr<Store> open_sqlite_store(const std::string& path, bool must_exist);

// Deletes the files a SQLite store at `path` keeps beside it: its WAL and shared memory,
// and an unfinished initial copy (PATH-pgseed-copy and its journal).
void remove_sqlite_side_files(const std::string& path);

// The SQLite table name pgseed uses for a source table.
std::string sqlite_table_name(const std::string& schema, const std::string& name);

}  // namespace pgseed
