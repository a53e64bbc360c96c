#include "decode/copy_binary.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <limits>

#include "common/byte_reader.h"
#include "common/bytes.h"
#include "model/datetime_text.h"
#include "model/pg_type.h"
#include "model/uuid_text.h"
#include "model/value_codec.h"
#include "pgseed/error.h"

namespace pgseed {

namespace {

std::optional<BinaryField> field_for(uint32_t base_type_oid) {
  switch (base_type_oid) {
    case kTextOid:
    case kVarcharOid:
    case kBpcharOid:  // not cast: bpchar::text drops the padding, its output keeps it
    case kNameOid:
      return BinaryField::kText;
    case kBoolOid: return BinaryField::kBool;
    case kInt2Oid: return BinaryField::kInt2;
    case kInt4Oid: return BinaryField::kInt4;
    case kInt8Oid: return BinaryField::kInt8;
    case kOidOid: return BinaryField::kOid;
    case kFloat4Oid: return BinaryField::kFloat4;
    case kFloat8Oid: return BinaryField::kFloat8;
    case kNumericOid: return BinaryField::kNumeric;
    case kDateOid: return BinaryField::kDate;
    case kTimestampOid: return BinaryField::kTimestamp;
    case kTimestamptzOid: return BinaryField::kTimestamptz;
    case kByteaOid: return BinaryField::kBytea;
    case kUuidOid: return BinaryField::kUuid;
    default: return std::nullopt;
  }
}

// Types whose text output costs the server most of a COPY's time.
bool costly_in_text(BinaryField f) {
  switch (f) {
    case BinaryField::kFloat4:
    case BinaryField::kFloat8:
    case BinaryField::kNumeric:
    case BinaryField::kDate:
    case BinaryField::kTimestamp:
    case BinaryField::kTimestamptz:
    case BinaryField::kBytea:
      return true;
    default:
      return false;
  }
}

[[noreturn]] void malformed(const std::string& what) {
  throw Error(ErrorCategory::kDecode, "binary COPY: " + what);
}

void expect_size(std::string_view v, size_t n, const char* type) {
  if (v.size() != n)
    malformed(std::string("a ") + type + " value of " + std::to_string(v.size()) + " bytes");
}

uint64_t be(std::string_view v) {
  uint64_t x = 0;
  for (char c : v) x = (x << 8) | static_cast<uint8_t>(c);
  return x;
}

template <typename T>
void append_int(std::string& out, T v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

// The first `digits` of x's four decimal digits (0 <= x <= 9999), or with `leading`, its
// last ones: x without leading zeros.
void append_group(std::string& out, int x, size_t digits = 4, bool leading = false) {
  char g[4];
  std::memcpy(g, kTwoDigits + 2 * (x / 100), 2);
  std::memcpy(g + 2, kTwoDigits + 2 * (x % 100), 2);
  out.append(leading ? g + 4 - digits : g, digits);
}

// numeric_send's form: ndigits, weight, sign, dscale (int16 each), then ndigits base-10000
// digits; printed as numeric_out prints it (get_str_from_var).
void append_numeric(std::string& out, std::string_view v) {
  if (v.size() < 8) malformed("a numeric value of " + std::to_string(v.size()) + " bytes");
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  const auto u16 = [p](size_t at) { return uint16_t(p[at] << 8 | p[at + 1]); };
  const int ndigits = u16(0);
  const int weight = int16_t(u16(2));
  const uint16_t sign = u16(4);
  const int dscale = u16(6);
  if (v.size() != 8 + size_t(ndigits) * 2) malformed("a numeric value of the wrong length");
  switch (sign) {
    case 0xC000: out += "NaN"; return;
    case 0xD000: out += "Infinity"; return;
    case 0xF000: out += "-Infinity"; return;
    case 0x0000: break;
    case 0x4000: out.push_back('-'); break;
    default: malformed("a numeric sign " + std::to_string(sign));
  }
  if (dscale > 0x3FFF) malformed("a numeric display scale " + std::to_string(dscale));
  // A digit is read, and checked, once, when it is printed (digits past the display scale
  // are not printed, as numeric_out does not print them).
  const auto digit = [&](int d) -> int {
    if (d < 0 || d >= ndigits) return 0;
    int x = u16(8 + size_t(d) * 2);
    if (x > 9999) malformed("a numeric digit " + std::to_string(x));
    return x;
  };
  int d = 0;
  if (weight < 0) {
    out.push_back('0');
    d = weight + 1;
  } else {
    int x = digit(0);  // without leading zeros
    append_group(out, x, x >= 1000 ? 4 : x >= 100 ? 3 : x >= 10 ? 2 : 1, /*leading=*/true);
    for (d = 1; d <= weight; ++d) append_group(out, digit(d));
  }
  if (dscale == 0) return;
  out.push_back('.');
  for (int i = 0; i < dscale; i += 4, ++d) append_group(out, digit(d), size_t(std::min(4, dscale - i)));
}

}  // namespace

std::optional<BinaryCopyPlan> plan_binary_copy(const std::vector<ColumnDef>& columns,
                                               const std::vector<bool>& casts_by_function) {
  BinaryCopyPlan plan;
  bool worth_it = false;
  for (size_t i = 0; i < columns.size(); ++i) {
    std::optional<BinaryField> f = field_for(columns[i].base_type_oid);
    if (!f && (i >= casts_by_function.size() || casts_by_function[i])) return std::nullopt;
    worth_it |= f && costly_in_text(*f);
    plan.fields.push_back(f.value_or(BinaryField::kText));
    plan.cast_to_text.push_back(!f);
  }
  if (!worth_it) return std::nullopt;
  return plan;
}

bool CopyBinaryParser::parse(std::string_view message, RowBatch& out) {
  ByteReader r({reinterpret_cast<const uint8_t*>(message.data()), message.size()}, "binary COPY");
  if (!header_seen_) {
    static constexpr char kSignature[] = "PGCOPY\n\377\r\n";  // and a NUL: 11 bytes
    if (r.remaining() < 11 || std::memcmp(message.data(), kSignature, 11) != 0)
      malformed("no file header");
    r.read_bytes(11, "file header");
    uint32_t flags = r.read_u32("header flags");
    if (flags & 0xFFFF0000u) malformed("header flags " + std::to_string(flags));
    r.read_bytes(r.read_u32("header extension length"), "header extension");
    header_seen_ = true;
  }
  int16_t count = r.read_i16("field count");
  if (count == -1) {
    if (!r.at_end()) malformed("bytes after the trailer");
    return false;
  }
  if (count < 0 || size_t(count) != fields_.size())
    malformed("a row of " + std::to_string(count) + " fields, expected " +
              std::to_string(fields_.size()));
  try {
    for (BinaryField f : fields_) {
      int32_t len = r.read_i32("field length");
      if (len == -1) {
        out.add_null();
        continue;
      }
      if (len < 0) malformed("a field length " + std::to_string(len));
      append_value(f, r.read_text(size_t(len), "field"), out);
    }
    if (!r.at_end()) malformed("bytes after the last field");
  } catch (...) {
    out.discard_unfinished_row();
    throw;
  }
  out.end_row();
  return true;
}

void CopyBinaryParser::append_value(BinaryField f, std::string_view v, RowBatch& out) {
  if (f == BinaryField::kText) return out.add_text(v);
  out.begin_text();
  std::string& s = out.text_buffer();
  switch (f) {
    case BinaryField::kText:
      break;
    case BinaryField::kBool:
      expect_size(v, 1, "bool");
      s.push_back(v[0] ? 't' : 'f');
      break;
    case BinaryField::kInt2:
      expect_size(v, 2, "int2");
      append_int(s, int16_t(be(v)));
      break;
    case BinaryField::kInt4:
      expect_size(v, 4, "int4");
      append_int(s, int32_t(be(v)));
      break;
    case BinaryField::kInt8:
      expect_size(v, 8, "int8");
      append_int(s, int64_t(be(v)));
      break;
    case BinaryField::kOid:
      expect_size(v, 4, "oid");
      append_int(s, uint32_t(be(v)));
      break;
    case BinaryField::kFloat4:
      expect_size(v, 4, "float4");
      append_float4(s, std::bit_cast<float>(uint32_t(be(v))));
      break;
    case BinaryField::kFloat8:
      expect_size(v, 8, "float8");
      append_float8(s, std::bit_cast<double>(be(v)));
      break;
    case BinaryField::kNumeric:
      append_numeric(s, v);
      break;
    case BinaryField::kDate: {
      expect_size(v, 4, "date");
      int32_t days = int32_t(be(v));
      if (days == std::numeric_limits<int32_t>::max())
        s += "infinity";
      else if (days == std::numeric_limits<int32_t>::min())
        s += "-infinity";
      else
        append_date_text(s, days);
      break;
    }
    case BinaryField::kTimestamp:
    case BinaryField::kTimestamptz:
      expect_size(v, 8, "timestamp");
      append_timestamp_text(s, int64_t(be(v)), f == BinaryField::kTimestamptz);
      break;
    case BinaryField::kBytea:
      append_bytea_hex(s, v);
      break;
    case BinaryField::kUuid:
      expect_size(v, 16, "uuid");
      s += uuid_text(v);
      break;
  }
  out.end_text();
}

}  // namespace pgseed
