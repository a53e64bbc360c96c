// PostgreSQL text form <-> typed values: shared by the SQLite and RocksDB stores and `dump`.
//
// Every value arrives in PostgreSQL's text output under pgseed's fixed session settings
// (extra_float_digits=3, bytea_output=hex, ...). The functions here turn the texts of the
// few types a store holds natively back into numbers/bytes and print them again exactly as
// PostgreSQL 15 does, so that a value reads the same whichever way it was stored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/row.h"

namespace pgseed {

// Parses a decimal integer as PostgreSQL prints int2/int4/int8/oid: an optional '-' and
// digits, nothing else (no '+', no spaces). Returns false (and leaves `out` unchanged) when
// the text is not such an integer or does not fit in int64.
bool parse_int64(std::string_view text, int64_t& out);

// Parses a float8 text as PostgreSQL prints it with extra_float_digits >= 1 (shortest
// round-trip digits). Returns nullopt when the value must not be stored as an SQLite REAL
// because it would not come back as the same text: NaN, Infinity, -Infinity and -0 (SQLite
// turns a bound NaN into NULL and -0 into 0), and any text that is not a finite number in
// double range. The caller stores those values as their text. format_float8 of the result
// prints `text` again.
std::optional<double> parse_float_exact(std::string_view text);

// The same for a float4 text; use it for float4 columns, not parse_float_exact. The result
// is the double nearest to the decimal text (0.1 -> 0.1, not 0.100000001490116) whenever
// static_cast<float> of that double is the float4 value; for the rare texts where it is not
// (rounding twice, text -> double -> float, lands on another float: "7.038531e-26"), it is
// the float4 value itself, widened. Either way format_float4(static_cast<float>(result))
// prints `text` again.
std::optional<double> parse_float4_exact(std::string_view text);

// The text PostgreSQL 15 prints for a float8 / float4 with extra_float_digits=3 (the
// shortest digits that round-trip, Ryu-style): fixed notation when the decimal exponent is
// in [-4, 15) for float8 and [-4, 6) for float4, else d[.ddd]e+XX / e-XX with at least two
// exponent digits ("1e+15", "1.5e-05", "5e-324"); "NaN", "Infinity", "-Infinity", "-0".
std::string format_float8(double value);
std::string format_float4(float value);
// The same, appended to `out` (no allocation beyond `out`'s own growth).
void append_float8(std::string& out, double value);
void append_float4(std::string& out, float value);

// bool: PostgreSQL's "t"/"f". parse_bool returns false (out unchanged) for any other text.
bool parse_bool(std::string_view text, bool& out);
inline std::string_view format_bool(bool value) { return value ? "t" : "f"; }

// bytea in hex output form: "\x" followed by two hex digits per byte ("\x0a00ff").
// decode_bytea_hex throws Error(kDecode) on anything else (missing "\x", odd digit count,
// a non-hex character). append_bytea_hex appends "\x" and lowercase hex digits to `out`.
std::string decode_bytea_hex(std::string_view text);
void append_bytea_hex(std::string& out, std::string_view bytes);

// Appends one field exactly as `COPY ... TO STDOUT (FORMAT csv)` writes it (delimiter ',',
// quote '"', NULL as an unquoted empty field): a NULL is nothing; a value is quoted, with
// every '"' doubled, when it is empty or contains ',', '"', '\n' or '\r'; leading and
// trailing spaces do not cause quoting. `\.` alone is quoted only when the row has a single
// column (PostgreSQL then guards it from being read as the end-of-data marker), so pass
// `single_column` = (the table has exactly one column). Throws Error(kInternal) for an
// unchanged-TOAST Datum, which has no text.
void append_csv_field(std::string& out, const Datum& d, bool single_column = false);

// Appends the value as a JSON string ("..." with '"', '\\' and control characters escaped:
// \b \f \n \r \t, others as \u00XX; valid UTF-8 passes through unchanged, each byte of an
// invalid UTF-8 sequence becomes \ufffd), or `null` for a NULL. Throws Error(kInternal)
// for an unchanged-TOAST Datum.
void append_json_value(std::string& out, const Datum& d);

}  // namespace pgseed
