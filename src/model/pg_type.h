// PostgreSQL's built-in type OIDs that pgseed treats specially, and how a store holds a
// column's values (its storage class), chosen from the column's base type.
#pragma once

#include <cstdint>

namespace pgseed {

inline constexpr uint32_t kBoolOid = 16;
inline constexpr uint32_t kByteaOid = 17;
inline constexpr uint32_t kNameOid = 19;
inline constexpr uint32_t kInt8Oid = 20;
inline constexpr uint32_t kInt2Oid = 21;
inline constexpr uint32_t kInt4Oid = 23;
inline constexpr uint32_t kTextOid = 25;
inline constexpr uint32_t kOidOid = 26;
inline constexpr uint32_t kFloat4Oid = 700;
inline constexpr uint32_t kFloat8Oid = 701;
inline constexpr uint32_t kBpcharOid = 1042;
inline constexpr uint32_t kVarcharOid = 1043;
inline constexpr uint32_t kDateOid = 1082;
inline constexpr uint32_t kTimestampOid = 1114;
inline constexpr uint32_t kTimestamptzOid = 1184;
inline constexpr uint32_t kNumericOid = 1700;
inline constexpr uint32_t kUuidOid = 2950;

// How a column's values are held by a store; chosen from the column's base type.
enum class StorageClass : uint8_t {
  kInteger,  // int2, int4, int8, oid: a 64-bit integer
  kReal,     // float4, float8: a double (NaN, ±Infinity, -0 kept exactly)
  kBool,     // bool: 0/1
  kBytes,    // bytea: raw bytes
  kText,     // everything else: PostgreSQL's text output
};

// How a column whose base type (domains resolved by the caller) is `base_type_oid` is held:
// int2/int4/int8/oid -> kInteger, float4/float8 -> kReal, bool -> kBool, bytea -> kBytes,
// anything else -> kText.
constexpr StorageClass storage_class_for_type(uint32_t base_type_oid) {
  switch (base_type_oid) {
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid:
      return StorageClass::kInteger;
    case kFloat4Oid:
    case kFloat8Oid:
      return StorageClass::kReal;
    case kBoolOid:
      return StorageClass::kBool;
    case kByteaOid:
      return StorageClass::kBytes;
    default:
      return StorageClass::kText;
  }
}

}  // namespace pgseed
