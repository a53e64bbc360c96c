// SqliteStore: the default store, one SQLite file (WAL mode) per replica.
//
// Layout (DESIGN.md, "SQLite store"): one SQLite table per source table, with the
// source's key as its primary key; metadata in `_pgseed_state` (key/value state),
// `_pgseed_tables` and `_pgseed_columns` (original PostgreSQL types).
//
// Table names. PostgreSQL names that differ only in ASCII case (`t`, `"T"`) or in where the
// dot falls (`a."b.c"`, `"a.b".c`) are distinct there but would be one SQLite table name
// (SQLite compares names ignoring ASCII case), and `sqlite_*` / `_pgseed_*` are reserved in
// the file. So each table's SQLite name is chosen once, when the table is created, and
// recorded in `_pgseed_tables.sqlite_name`; everything reads the table by that record:
//   1. the readable name: `name` for schema public, `schema.name` otherwise (the only
//      rule before there was a choice, so older stores keep their names);
//   2. prefixed with `~` when it begins with `sqlite_` or `_pgseed_` (any case);
//   3. when that is taken — by any table, index or view in the file, ignoring ASCII case
//      — the first free of `NAME~2`, `NAME~3`, ...
// `~` is never part of an unquoted PostgreSQL name, so a name with a `~` that the source
// does not have marks a table renamed here. The tables of one copy are created in order
// of their names (schema, then table, bytewise), so which of two colliding tables keeps
// the readable name depends on the names alone. A table copied again (a resync or a
// schema change: dropped and created in one store transaction) keeps the SQLite name it
// had under that PostgreSQL name, if it is still free; a renamed table gets one by the rule.
#pragma once

#include <memory>
#include <string>

#include "store/store.h"

namespace pgseed {

std::unique_ptr<Store> open_sqlite_store(const std::string& path, bool must_exist);

// Deletes the files a SQLite store at `path` keeps beside it: its WAL and shared memory,
// and an unfinished initial copy (PATH-pgseed-copy and its journal).
void remove_sqlite_side_files(const std::string& path);

}  // namespace pgseed
