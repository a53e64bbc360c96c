// Rows of `COPY ... TO STDOUT` in PostgreSQL's default text format.
#pragma once

#include <cstddef>
#include <string_view>

#include "model/row.h"

namespace pgseed {

// Parses one row as PQgetCopyData returns it (text format: fields separated by tabs, `\N`
// for NULL, newline at the end; a missing final newline is tolerated) and appends it to
// `out` as one row of `expected_columns` values, unescaped. Escapes are read as
// PostgreSQL's COPY FROM reads them: \b \f \n \r \t \v, \\, \ooo (1-3 octal digits),
// \xhh (1-2 hex digits; `\x` without a hex digit is "x"), and a backslash before any other
// character stands for that character. A field that is exactly `\N` is NULL; `\\N` is the
// two-character text "\N". A table with no columns sends empty lines.
//
// Throws Error(kDecode) when the line does not hold exactly `expected_columns` fields or
// ends in a lone backslash; `out` is then left unchanged (the line is validated before
// anything is appended).
void parse_copy_text_line(std::string_view line, size_t expected_columns, RowBatch& out);

}  // namespace pgseed
