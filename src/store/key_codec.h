// KeyCodec: order-preserving keys for the RocksDB store.
//
// A key is  table id (u32 big-endian)  +  one field per key column  +  the tie suffix.
// Comparing two keys of one table with memcmp gives the order of the key values under
// PostgreSQL's btree order (ASC, NULLS LAST, text in the C collation), column by column,
// for every encoding but kOther (see there). Values PostgreSQL holds equal but prints
// differently (1.5 / 1.50, 0 / -0) get distinct, adjacent keys (see the tie suffix).
//
// Field := marker byte, then the value's order part:
//   0x01 value follows  |  0x02 NULL (only in keys of tables without a key: all columns)
//
// Order part per encoding (the column's base type):
//   kInt2/kInt4/kInt8  2/4/8 bytes big-endian, sign bit flipped
//   kOid               4 bytes big-endian (oid is unsigned)
//   kFloat4/kFloat8    the value as a double, 8 bytes: sign bit set -> all bits inverted,
//                      else sign bit flipped; NaN is one canonical NaN above +Infinity,
//                      -0 is encoded as 0 (PostgreSQL: -0 = 0)
//   kBool              0x00 false, 0x01 true
//   kText              bytes with 0x00 escaped as 00 FF, then 00 01 (so a prefix sorts
//                      first and a composite key's next field cannot interfere)
//   kBpchar            like kText with trailing spaces removed (bpchar ignores them)
//   kBytea             the raw bytes (decoded from "\x.."), escaped like kText
//   kUuid              the 16 bytes
//   kNumeric           class byte: 01 -Infinity, 02 negative, 03 zero, 04 positive,
//                      05 +Infinity, 06 NaN; for positive: the decimal exponent E (value =
//                      0.d1d2... x 10^E, d1 != 0) as int32 big-endian sign-flipped, then the
//                      significant digits two per byte (1 + 10*a + b, an odd last digit
//                      padded with 0), then 00; negative: the same with -E and every
//                      digit byte and the terminator inverted (xor FF)
//   kDate              days since 2000-01-01 as int64 big-endian sign-flipped;
//                      -infinity/infinity are INT64_MIN/INT64_MAX
//   kTimestamp(tz)     microseconds since 2000-01-01 00:00:00 (UTC for timestamptz),
//                      encoded like kDate
//   kOther             PostgreSQL's text, escaped like kText. The order is then the byte
//                      order of the text, not PostgreSQL's order of the type (enums,
//                      intervals, arrays, ranges, time, ... keep a stable but different
//                      order); text/varchar in a non-C collation likewise sort by bytes.
//
// Tie suffix: the details of a value's text that PostgreSQL's equality ignores, so that the
// key decodes back to the exact text: numeric display scale (varint), the sign of a float
// zero (one byte, only for zeros), bpchar's count of trailing spaces (varint). They come
// after all fields because equal values must not be ordered by them before later columns
// are compared ((1.50,'a') sorts before (1.5,'b')).
//
// Decoding returns PostgreSQL's text under pgseed's session settings: timestamps print as
// ISO with "+00", uuids in lowercase, bytea as "\x..". A value whose input text was not in
// that canonical form (e.g. a timestamptz with another offset) decodes to the canonical
// text of the same value.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/row.h"
#include "model/table_def.h"

namespace pgseed {

enum class KeyEncoding : uint8_t {
  kInt2,
  kInt4,
  kInt8,
  kOid,
  kFloat4,
  kFloat8,
  kBool,
  kText,  // text, varchar, name, char ("char")
  kBpchar,
  kBytea,
  kUuid,
  kNumeric,
  kDate,
  kTimestamp,
  kTimestamptz,
  kOther,
};

// The encoding for a column, from its base type (type_oid when base_type_oid is 0). A type
// not listed above falls back on its storage class (kInteger -> kInt8, kBool, kBytes) or
// kOther.
KeyEncoding key_encoding_for(const ColumnDef& column);

// Appends the fields for `values` (one per encoding) and then their tie suffix to `out`.
// NULLs are accepted only with `allow_null`. Throws Error(kDecode) for a NULL that is not
// allowed, an unchanged-TOAST Datum, or a text that is not a valid value of its type;
// `out` may then hold a partial key.
void append_key_fields(std::string& out, std::span<const KeyEncoding> encodings,
                       std::span<const Datum> values, bool allow_null);

// Reads what append_key_fields wrote for `encodings` from the front of `in`, advancing it
// past the tie suffix. Returns each value's text, nullopt for NULL. Throws Error(kStore)
// when the bytes are not such a key.
std::vector<std::optional<std::string>> read_key_fields(std::string_view& in,
                                                        std::span<const KeyEncoding> encodings);

class KeyCodec {
 public:
  KeyCodec() = default;
  // The key columns of `def` in key_position order; for a table without a key, all
  // columns in table order (NULLs then allowed).
  explicit KeyCodec(const TableDef& def);

  // The 4 bytes every key of table `table_id` starts with.
  static std::string table_prefix(uint32_t table_id);
  // Appends the 4-byte table prefix.
  static void append_table_prefix(std::string& out, uint32_t table_id);

  // Indices into the table's columns, in key order.
  const std::vector<size_t>& columns() const { return columns_; }
  const std::vector<KeyEncoding>& encodings() const { return encodings_; }
  bool keyed() const { return keyed_; }

  // The key of `row` (one Datum per column of the table; only key columns are read).
  // Throws as append_key_fields.
  std::string encode(std::span<const Datum> row) const;
  // The same key, appended to `out`.
  void append_encoded(std::string& out, std::span<const Datum> row) const;
  // Decodes a key made by encode(): the key columns' texts in key order. `rest` receives
  // the bytes after the tie suffix (a keyless table's sequence number). Throws
  // Error(kStore) for bytes that are not such a key of this table.
  std::vector<std::optional<std::string>> decode(std::string_view key,
                                                 std::string_view* rest = nullptr) const;

 private:
  uint32_t table_id_ = 0;
  bool keyed_ = false;
  std::vector<size_t> columns_;
  std::vector<KeyEncoding> encodings_;
};

}  // namespace pgseed
