// Rows of `COPY ... TO STDOUT (FORMAT binary)`, turned into the same texts a text COPY of
// the same rows gives (PostgreSQL's output under pgseed's session settings), so that the
// stores see no difference.
//
// Why: for numeric, date/time, float and bytea columns the server's text output functions
// are most of what a COPY costs it (measured on PostgreSQL 15: -20% of the source's CPU on
// a numeric/timestamp table, -45% on a bytea/TOAST one); their binary forms cost it almost
// nothing, and printing them here is cheap. For integer, bool and text columns binary saves
// the server nothing and is larger on the wire, so such tables stay in text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/row.h"
#include "model/table_def.h"

namespace pgseed {

// How one column's binary value is read.
enum class BinaryField : uint8_t {
  kText,  // the bytes as they are: text, varchar, bpchar, name, and columns cast to text
  kBool,
  kInt2,
  kInt4,
  kInt8,
  kOid,
  kFloat4,
  kFloat8,
  kNumeric,
  kDate,
  kTimestamp,
  kTimestamptz,
  kBytea,  // raw bytes, printed as bytea_output=hex prints them
  kUuid,
};

// A table's binary COPY: how each column is read, and which columns the SELECT casts to
// text (types pgseed does not decode; the server prints them with their output function,
// as a text COPY would).
struct BinaryCopyPlan {
  std::vector<BinaryField> fields;
  std::vector<bool> cast_to_text;
};

// The plan for a table with `columns`, or nullopt when it is copied in text: when no
// column is of a type whose text output is costly (numeric, float4/8, date, timestamp,
// timestamptz, bytea), or when a column that would be cast has a cast to text that is a
// function rather than its output (`casts_by_function[i]`: inet's text() adds the mask
// length, for one), so that `::text` would not give the text COPY's text.
std::optional<BinaryCopyPlan> plan_binary_copy(const std::vector<ColumnDef>& columns,
                                               const std::vector<bool>& casts_by_function);

// Reads the CopyData messages of one binary COPY, as PQgetCopyData returns them: the first
// starts with the file header, each holds one row, the last is the trailer.
class CopyBinaryParser {
 public:
  explicit CopyBinaryParser(std::vector<BinaryField> fields) : fields_(std::move(fields)) {}

  // Appends the row in `message` to `out`, each value as its text; false (nothing
  // appended) for the trailer. Throws Error(kDecode) for a malformed message, a row with
  // another number of fields, or a value that is not a valid one of its type; `out` is
  // then left without a partial row.
  bool parse(std::string_view message, RowBatch& out);

 private:
  void append_value(BinaryField f, std::string_view v, RowBatch& out);

  std::vector<BinaryField> fields_;
  bool header_seen_ = false;
};

}  // namespace pgseed
