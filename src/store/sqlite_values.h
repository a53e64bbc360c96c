// How the SQLite store holds PostgreSQL values so that plain SQL on the file answers as
// PostgreSQL does, and how it prints them back as PostgreSQL's exact text.
//
// The representation is decided by the column's type alone (base type, type modifier) and
// the store's format; reading is tolerant of every form an older format wrote, so that a
// format-1 store reads exactly without being rewritten. Format 2 (on top of format 1's
// INTEGER integers, REAL floats, 0/1 bools and BLOB byteas):
//   - numeric(p,s) with 1 <= p <= 15 and 0 <= s <= p: REAL (a double holds any decimal of
//     at most 15 significant digits closely enough to print it back with s decimals);
//     NaN stays the TEXT 'NaN' (SQLite sorts text after every number, as PostgreSQL sorts
//     NaN after every number);
//   - timestamptz: PostgreSQL's text (TimeZone=UTC) without the "+00" suffix when it is
//     YYYY-MM-DD HH:MM:SS[.ffffff]+00 (so SQLite's date functions read it); infinity,
//     -infinity, BC and years past 9999 as PostgreSQL prints them;
//   - float4/float8 ±Infinity: REAL ±inf (NaN and -0 stay TEXT: SQLite would turn them
//     into NULL and 0).
// Format 1 stored numeric and timestamptz as PostgreSQL's text and ±Infinity as TEXT.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/table_def.h"

namespace pgseed {

// The SQLite store formats: the `format` value in _pgseed_state.
inline constexpr int kSqliteFormatText = 1;    // "pgseed-sqlite-1": numeric, timestamptz as text
inline constexpr int kSqliteFormatNative = 2;  // "pgseed-sqlite-2": the representation above

// The scale s of a numeric(p,s) column that format 2 stores as REAL (1 <= p <= 15,
// 0 <= s <= p, type modifier decoded as PostgreSQL 15's numeric.c does, negative scales
// excluded); nullopt for every other column.
std::optional<int> numeric_real_scale(uint32_t base_type_oid, int32_t type_mod);

// The double for a numeric text of such a column, when it prints back as exactly `text`
// with `scale` decimals (append_scaled_numeric); nullopt otherwise (NaN, anything odd).
std::optional<double> parse_scaled_numeric(std::string_view text, int scale);
// Appends `value` with exactly `scale` decimals ("%.*f"), never "-0.00".
void append_scaled_numeric(std::string& out, double value, int scale);

// `text` without its "+00" when it is YYYY-MM-DD HH:MM:SS[.f+]+00; nullopt otherwise.
std::optional<std::string_view> strip_utc_suffix(std::string_view text);
// Whether a stored timestamptz text is YYYY-MM-DD HH:MM:SS[.f+] (no zone): the form
// strip_utc_suffix made, to which reading appends "+00" again.
bool lacks_utc_suffix(std::string_view stored);

// What a store of `format` holds for PostgreSQL text `text` of a column whose storage
// class is kReal or kText: a REAL, or a text (`text` itself or a prefix of it).
struct SqliteValue {
  bool is_real = false;
  double real = 0;
  std::string_view text;
};
SqliteValue sqlite_value(const ColumnDef& col, std::string_view text, int format);

}  // namespace pgseed
