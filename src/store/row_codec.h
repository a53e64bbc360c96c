// RowCodec: the value of a row in the RocksDB store.
//
// Format (version 1):
//
//   row   := count:varint  cell{count}
//   cell  := tag:u8  payload
//
//   tag  payload                               text it decodes to
//   0x00 (none)                                NULL
//   0x01 zigzag varint of an int64             decimal, as int2/int4/int8/oid print
//   0x02 8 bytes: IEEE-754 binary64, big-end.  format_float8 (NaN, ±Infinity, -0 included)
//   0x03 4 bytes: IEEE-754 binary32, big-end.  format_float4
//   0x04 (none)                                "f"
//   0x05 (none)                                "t"
//   0x06 varint length, raw bytes              bytea hex form "\x0a0b..."
//   0x07 varint length, bytes                  the bytes themselves (PostgreSQL's text)
//
//   varint: unsigned LEB128 (7 bits per byte, least significant first, high bit = more),
//   at most 10 bytes. zigzag: (n << 1) ^ (n >> 63).
//
// A value is stored in a typed cell only when that cell prints back exactly the text that
// came in; anything else (an integer with leading zeros, a bytea in escape form, a float
// text that is not the shortest round-trip form) is kept as a 0x07 text cell. So encoding
// never loses anything, and decoding needs no column types.
//
// The count is the number of cells this row was written with. A reader that expects more
// cells treats the missing trailing ones as absent (the store then reads them as NULL or
// as the default recorded when the column was added); this is what lets ADD COLUMN leave
// existing rows as they are.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "model/row.h"
#include "model/table_def.h"

namespace pgseed {

class RowCodec {
 public:
  enum Tag : uint8_t {
    kNull = 0x00,
    kInt = 0x01,
    kFloat8 = 0x02,
    kFloat4 = 0x03,
    kFalse = 0x04,
    kTrue = 0x05,
    kBytes = 0x06,
    kText = 0x07,
  };

  // Appends a whole row: `values` holds one Datum per column of `columns`, in order.
  // Throws Error(kInternal) when the sizes differ or a value is unchanged-TOAST (which has
  // no text to store).
  static void encode(std::string& out, std::span<const ColumnDef> columns,
                     std::span<const Datum> values);

  // The pieces of encode(), for callers that lay cells out themselves: the cell count,
  // then one cell per column (typed by the column's storage class and base type).
  static void append_count(std::string& out, uint64_t count);
  static void append_cell(std::string& out, const ColumnDef& column, const Datum& value);
  static void append_null(std::string& out) { out.push_back(static_cast<char>(kNull)); }

  // Decodes a row into one Datum per stored cell. Text cells point into `encoded`;
  // formatted ones (numbers, booleans, bytea) into `scratch`, which is cleared first.
  // Both must outlive the use of `out`. Throws Error(kStore) when `encoded` is not a row
  // (truncated, unknown tag, trailing bytes).
  static void decode(std::string_view encoded, std::string& scratch, Row& out);
};

}  // namespace pgseed
