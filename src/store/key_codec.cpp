#include "store/key_codec.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/byte_reader.h"
#include "common/bytes.h"
#include "model/datetime_text.h"
#include "model/numeric_text.h"
#include "model/pg_type.h"
#include "model/uuid_text.h"
#include "model/value_codec.h"
#include "pgseed/error.h"

namespace pgseed {

namespace {

constexpr uint8_t kMarkValue = 0x01;
constexpr uint8_t kMarkNull = 0x02;

constexpr uint64_t kSignBit = uint64_t{1} << 63;
constexpr uint64_t kCanonicalNan = 0x7FF8000000000000ULL;

[[noreturn]] void invalid(KeyEncoding enc, std::string_view text);

const char* encoding_name(KeyEncoding e) {
  switch (e) {
    case KeyEncoding::kInt2:
      return "int2";
    case KeyEncoding::kInt4:
      return "int4";
    case KeyEncoding::kInt8:
      return "int8";
    case KeyEncoding::kOid:
      return "oid";
    case KeyEncoding::kFloat4:
      return "float4";
    case KeyEncoding::kFloat8:
      return "float8";
    case KeyEncoding::kBool:
      return "bool";
    case KeyEncoding::kText:
      return "text";
    case KeyEncoding::kBpchar:
      return "bpchar";
    case KeyEncoding::kBytea:
      return "bytea";
    case KeyEncoding::kUuid:
      return "uuid";
    case KeyEncoding::kNumeric:
      return "numeric";
    case KeyEncoding::kDate:
      return "date";
    case KeyEncoding::kTimestamp:
      return "timestamp";
    case KeyEncoding::kTimestamptz:
      return "timestamptz";
    case KeyEncoding::kOther:
      return "text form";
  }
  return "?";
}

void invalid(KeyEncoding enc, std::string_view text) {
  std::string shown(text.substr(0, 64));
  throw Error(ErrorCategory::kDecode, std::string("invalid ") + encoding_name(enc) +
                                          " key value '" + shown +
                                          (text.size() > 64 ? "...'" : "'"));
}

[[noreturn]] void corrupt(const std::string& what) { throw Error(ErrorCategory::kDecode, what); }

void append_escaped(std::string& out, std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    const void* z = std::memchr(s.data() + pos, 0, s.size() - pos);
    size_t end = z ? static_cast<size_t>(static_cast<const char*>(z) - s.data()) : s.size();
    out.append(s.data() + pos, end - pos);
    if (end == s.size()) break;
    out.push_back('\0');
    out.push_back('\xFF');
    pos = end + 1;
  }
  out.push_back('\0');
  out.push_back('\x01');
}

std::string read_escaped(ByteReader& in) {
  std::string s;
  for (;;) {
    uint8_t b = in.read_u8("escaped bytes");
    if (b != 0) {
      s.push_back(static_cast<char>(b));
      continue;
    }
    uint8_t next = in.read_u8("escape");
    if (next == 0x01) return s;
    if (next != 0xFF) corrupt("bad escape byte " + std::to_string(next) + " in a key");
    s.push_back('\0');
  }
}

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, res.ptr);
}

int64_t parse_int_in(std::string_view t, int64_t lo, int64_t hi, KeyEncoding enc) {
  int64_t v = 0;
  if (!parse_int64(t, v) || v < lo || v > hi) invalid(enc, t);
  return v;
}

// ---- floats ----

double parse_float_key(std::string_view t, KeyEncoding enc) {
  double v = 0;
  if (t == "NaN") {
    v = std::numeric_limits<double>::quiet_NaN();
  } else if (t == "Infinity") {
    v = std::numeric_limits<double>::infinity();
  } else if (t == "-Infinity") {
    v = -std::numeric_limits<double>::infinity();
  } else if (t == "-0") {
    v = -0.0;
  } else if (auto p = parse_float_exact(t)) {
    v = *p;
  } else {
    invalid(enc, t);
  }
  if (enc == KeyEncoding::kFloat4) v = static_cast<double>(static_cast<float>(v));
  return v;
}

uint64_t float_order_bits(double v) {
  uint64_t bits = std::isnan(v) ? kCanonicalNan : std::bit_cast<uint64_t>(v);
  return (bits & kSignBit) ? ~bits : bits ^ kSignBit;
}

double float_from_order_bits(uint64_t u) {
  uint64_t bits = (u & kSignBit) ? u ^ kSignBit : ~u;
  return std::bit_cast<double>(bits);
}

// ---- numeric ----

void append_numeric(std::string& out, std::string& tie, std::string_view t) {
  std::optional<Decimal> parsed = parse_numeric(t);
  if (!parsed) invalid(KeyEncoding::kNumeric, t);
  const Decimal& d = *parsed;
  out.push_back(static_cast<char>(d.cls));
  if (d.cls != Decimal::Class::kZero && !d.finite_nonzero()) return;
  if (d.finite_nonzero()) {
    const bool neg = d.cls == Decimal::Class::kNegative;
    const uint8_t flip = neg ? 0xFF : 0x00;
    int32_t e = static_cast<int32_t>(neg ? -d.exponent : d.exponent);
    append_be(out, static_cast<uint32_t>(e) ^ 0x80000000u, 4);
    for (size_t i = 0; i < d.digits.size(); i += 2) {
      int a = d.digits[i] - '0';
      int b = i + 1 < d.digits.size() ? d.digits[i + 1] - '0' : 0;
      out.push_back(static_cast<char>(static_cast<uint8_t>(1 + 10 * a + b) ^ flip));
    }
    out.push_back(static_cast<char>(flip));
  }
  append_varint(tie, d.dscale);
}

// Reads a numeric's order part; the text is completed by numeric_text once the tie
// suffix (its display scale) is known.
Decimal read_numeric(ByteReader& in) {
  Decimal d;
  uint8_t cls = in.read_u8("numeric class");
  if (cls < static_cast<uint8_t>(Decimal::Class::kNegInf) ||
      cls > static_cast<uint8_t>(Decimal::Class::kNaN))
    corrupt("bad numeric class in a key");
  d.cls = static_cast<Decimal::Class>(cls);
  if (!d.finite_nonzero()) return d;
  const bool neg = d.cls == Decimal::Class::kNegative;
  const uint8_t flip = neg ? 0xFF : 0x00;
  int32_t e = static_cast<int32_t>(in.read_u32("numeric exponent") ^ 0x80000000u);
  d.exponent = neg ? -int64_t{e} : int64_t{e};
  for (;;) {
    uint8_t b = in.read_u8("numeric digits") ^ flip;
    if (b == 0) break;
    if (b > 100) corrupt("bad numeric digit pair in a key");
    d.digits.push_back(static_cast<char>('0' + (b - 1) / 10));
    d.digits.push_back(static_cast<char>('0' + (b - 1) % 10));
  }
  if (!d.digits.empty() && d.digits.back() == '0') d.digits.pop_back();  // padding
  if (d.digits.empty() || d.digits.back() == '0' || d.digits.front() == '0')
    corrupt("bad numeric digits in a key");
  return d;
}

// ---- one field ----

void append_field(std::string& out, std::string& tie, KeyEncoding enc, const Datum& v,
                  bool allow_null) {
  if (v.kind == Datum::Kind::kNull) {
    if (!allow_null)
      throw Error(ErrorCategory::kDecode,
                  std::string("NULL in a key column (") + encoding_name(enc) + ")");
    out.push_back(static_cast<char>(kMarkNull));
    return;
  }
  if (v.kind == Datum::Kind::kUnchanged)
    throw Error(ErrorCategory::kDecode,
                "a key column holds an unchanged TOAST value, and no old key was sent");
  out.push_back(static_cast<char>(kMarkValue));
  std::string_view t = v.text;
  switch (enc) {
    case KeyEncoding::kInt2:
      append_be(out, static_cast<uint64_t>(parse_int_in(t, INT16_MIN, INT16_MAX, enc)) ^ 0x8000, 2);
      return;
    case KeyEncoding::kInt4:
      append_be(out, static_cast<uint64_t>(parse_int_in(t, INT32_MIN, INT32_MAX, enc)) ^ 0x80000000,
             4);
      return;
    case KeyEncoding::kInt8:
      append_be(out, static_cast<uint64_t>(parse_int_in(t, INT64_MIN, INT64_MAX, enc)) ^ kSignBit, 8);
      return;
    case KeyEncoding::kOid:
      append_be(out, static_cast<uint64_t>(parse_int_in(t, 0, UINT32_MAX, enc)), 4);
      return;
    case KeyEncoding::kFloat4:
    case KeyEncoding::kFloat8: {
      double d = parse_float_key(t, enc);
      if (d == 0) {
        tie.push_back(std::signbit(d) ? '\x01' : '\x00');
        d = 0.0;  // -0 = 0 in PostgreSQL: the sign only goes to the tie suffix
      }
      append_be(out, float_order_bits(d), 8);
      return;
    }
    case KeyEncoding::kBool: {
      bool b = false;
      if (!parse_bool(t, b)) invalid(enc, t);
      out.push_back(b ? '\x01' : '\x00');
      return;
    }
    case KeyEncoding::kText:
    case KeyEncoding::kOther:
      append_escaped(out, t);
      return;
    case KeyEncoding::kBpchar: {
      size_t end = t.find_last_not_of(' ');
      size_t len = end == std::string_view::npos ? 0 : end + 1;
      append_escaped(out, t.substr(0, len));
      append_varint(tie, t.size() - len);
      return;
    }
    case KeyEncoding::kBytea:
      append_escaped(out, decode_bytea_hex(t));
      return;
    case KeyEncoding::kUuid:
      if (!parse_uuid(t, out)) invalid(enc, t);
      return;
    case KeyEncoding::kNumeric:
      append_numeric(out, tie, t);
      return;
    case KeyEncoding::kDate: {
      std::optional<int64_t> days = parse_date(t);
      if (!days) invalid(enc, t);
      append_be(out, static_cast<uint64_t>(*days) ^ kSignBit, 8);
      return;
    }
    case KeyEncoding::kTimestamp:
    case KeyEncoding::kTimestamptz: {
      std::optional<int64_t> micros = parse_timestamp(t, enc == KeyEncoding::kTimestamptz);
      if (!micros) invalid(enc, t);
      append_be(out, static_cast<uint64_t>(*micros) ^ kSignBit, 8);
      return;
    }
  }
}

// A field's order part as read, before the tie suffix completes it.
struct PendingField {
  bool null = false;
  std::string text;  // final text, or the bpchar's stripped text
  double real = 0;   // floats
  Decimal num;       // numerics
};

template <typename Values>
void append_fields(std::string& out, std::span<const KeyEncoding> encodings, const Values& value,
                   bool allow_null) {
  std::string tie;
  for (size_t i = 0; i < encodings.size(); ++i)
    append_field(out, tie, encodings[i], value(i), allow_null);
  out += tie;
}

}  // namespace

KeyEncoding key_encoding_for(const ColumnDef& column) {
  uint32_t oid = column.base_type_oid != 0 ? column.base_type_oid : column.type_oid;
  switch (oid) {
    case kInt2Oid:
      return KeyEncoding::kInt2;
    case kInt4Oid:
      return KeyEncoding::kInt4;
    case kInt8Oid:
      return KeyEncoding::kInt8;
    case kOidOid:
      return KeyEncoding::kOid;
    case kFloat4Oid:
      return KeyEncoding::kFloat4;
    case kFloat8Oid:
      return KeyEncoding::kFloat8;
    case kBoolOid:
      return KeyEncoding::kBool;
    case kByteaOid:
      return KeyEncoding::kBytea;
    case kTextOid:
    case kVarcharOid:
    case kNameOid:
      return KeyEncoding::kText;
    case kBpcharOid:
      return KeyEncoding::kBpchar;
    case kUuidOid:
      return KeyEncoding::kUuid;
    case kNumericOid:
      return KeyEncoding::kNumeric;
    case kDateOid:
      return KeyEncoding::kDate;
    case kTimestampOid:
      return KeyEncoding::kTimestamp;
    case kTimestamptzOid:
      return KeyEncoding::kTimestamptz;
    default:
      break;
  }
  switch (column.storage) {
    case StorageClass::kInteger:
      return KeyEncoding::kInt8;
    case StorageClass::kBool:
      return KeyEncoding::kBool;
    case StorageClass::kBytes:
      return KeyEncoding::kBytea;
    case StorageClass::kReal:  // float4 or float8 unknown: the text keeps it lossless
    case StorageClass::kText:
      break;
  }
  return KeyEncoding::kOther;
}

void append_key_fields(std::string& out, std::span<const KeyEncoding> encodings,
                       std::span<const Datum> values, bool allow_null) {
  if (encodings.size() != values.size())
    throw Error(ErrorCategory::kInternal, "key has " + std::to_string(values.size()) +
                                              " values for " + std::to_string(encodings.size()) +
                                              " columns");
  append_fields(
      out, encodings, [&](size_t i) -> const Datum& { return values[i]; }, allow_null);
}

std::vector<std::optional<std::string>> read_key_fields(std::string_view& in,
                                                        std::span<const KeyEncoding> encodings) {
  ByteReader r({reinterpret_cast<const uint8_t*>(in.data()), in.size()}, "key");
  std::vector<PendingField> fields(encodings.size());
  std::vector<std::optional<std::string>> result(encodings.size());
  try {
    for (size_t i = 0; i < encodings.size(); ++i) {
      PendingField& f = fields[i];
      uint8_t mark = r.read_u8("field marker");
      if (mark == kMarkNull) {
        f.null = true;
        continue;
      }
      if (mark != kMarkValue) corrupt("bad field marker " + std::to_string(mark) + " in a key");
      switch (encodings[i]) {
        case KeyEncoding::kInt2:
          append_int(f.text, static_cast<int16_t>(r.read_u16() ^ 0x8000));
          break;
        case KeyEncoding::kInt4:
          append_int(f.text, static_cast<int32_t>(r.read_u32() ^ 0x80000000u));
          break;
        case KeyEncoding::kInt8:
          append_int(f.text, static_cast<int64_t>(r.read_u64() ^ kSignBit));
          break;
        case KeyEncoding::kOid:
          append_int(f.text, r.read_u32());
          break;
        case KeyEncoding::kFloat4:
        case KeyEncoding::kFloat8:
          f.real = float_from_order_bits(r.read_u64("float"));
          break;
        case KeyEncoding::kBool: {
          uint8_t b = r.read_u8("bool");
          if (b > 1) corrupt("bad bool in a key");
          f.text = b ? "t" : "f";
          break;
        }
        case KeyEncoding::kText:
        case KeyEncoding::kOther:
        case KeyEncoding::kBpchar:
          f.text = read_escaped(r);
          break;
        case KeyEncoding::kBytea:
          append_bytea_hex(f.text, read_escaped(r));
          break;
        case KeyEncoding::kUuid:
          f.text = uuid_text(r.read_text(16, "uuid"));
          break;
        case KeyEncoding::kNumeric:
          f.num = read_numeric(r);
          break;
        case KeyEncoding::kDate:
          f.text = date_text(static_cast<int64_t>(r.read_u64("date") ^ kSignBit));
          break;
        case KeyEncoding::kTimestamp:
        case KeyEncoding::kTimestamptz:
          f.text = timestamp_text(static_cast<int64_t>(r.read_u64("timestamp") ^ kSignBit),
                                  encodings[i] == KeyEncoding::kTimestamptz);
          break;
      }
    }
    // The tie suffix, in field order.
    for (size_t i = 0; i < encodings.size(); ++i) {
      PendingField& f = fields[i];
      if (f.null) continue;
      switch (encodings[i]) {
        case KeyEncoding::kFloat4:
        case KeyEncoding::kFloat8: {
          double d = f.real;
          if (d == 0) {
            uint8_t neg = r.read_u8("float zero sign");
            if (neg > 1) corrupt("bad float zero sign in a key");
            d = neg ? -0.0 : 0.0;
          }
          f.text = encodings[i] == KeyEncoding::kFloat4 ? format_float4(static_cast<float>(d))
                                                        : format_float8(d);
          break;
        }
        case KeyEncoding::kBpchar: {
          uint64_t spaces = read_varint(r, "bpchar padding");
          if (spaces > (uint64_t{1} << 30)) corrupt("bad bpchar padding in a key");
          f.text.append(static_cast<size_t>(spaces), ' ');
          break;
        }
        case KeyEncoding::kNumeric:
          if (f.num.finite_nonzero() || f.num.cls == Decimal::Class::kZero) {
            f.num.dscale = read_varint(r, "numeric scale");
            if (f.num.dscale > (uint64_t{1} << 30)) corrupt("bad numeric scale in a key");
          }
          if (std::optional<std::string> text = numeric_text(f.num))
            f.text = std::move(*text);
          else
            corrupt("numeric display scale below its digits in a key");
          break;
        default:
          break;
      }
      result[i] = std::move(f.text);
    }
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::kDecode) throw;
    throw Error(ErrorCategory::kStore, std::string("corrupt key in the store: ") + e.what());
  }
  in.remove_prefix(r.position());
  return result;
}

KeyCodec::KeyCodec(const TableDef& def) : table_id_(def.id), keyed_(def.has_key()) {
  for (size_t i = 0; i < def.columns.size(); ++i)
    if (!keyed_ || def.columns[i].key_position > 0) columns_.push_back(i);
  if (keyed_)
    std::stable_sort(columns_.begin(), columns_.end(), [&](size_t a, size_t b) {
      return def.columns[a].key_position < def.columns[b].key_position;
    });
  for (size_t i : columns_) encodings_.push_back(key_encoding_for(def.columns[i]));
}

void KeyCodec::append_table_prefix(std::string& out, uint32_t table_id) {
  append_be(out, table_id, 4);
}

std::string KeyCodec::table_prefix(uint32_t table_id) {
  std::string s;
  append_table_prefix(s, table_id);
  return s;
}

std::string KeyCodec::encode(std::span<const Datum> row) const {
  std::string out;
  out.reserve(32);
  append_encoded(out, row);
  return out;
}

void KeyCodec::append_encoded(std::string& out, std::span<const Datum> row) const {
  for (size_t i : columns_)
    if (i >= row.size())
      throw Error(ErrorCategory::kInternal, "row has " + std::to_string(row.size()) +
                                                " values, key needs column " +
                                                std::to_string(i + 1));
  append_table_prefix(out, table_id_);
  append_fields(
      out, encodings_, [&](size_t k) -> const Datum& { return row[columns_[k]]; }, !keyed_);
}

std::vector<std::optional<std::string>> KeyCodec::decode(std::string_view key,
                                                         std::string_view* rest) const {
  if (key.size() < 4 || key.substr(0, 4) != table_prefix(table_id_))
    throw Error(ErrorCategory::kStore,
                "corrupt key in the store: not a key of table " + std::to_string(table_id_));
  key.remove_prefix(4);
  auto values = read_key_fields(key, encodings_);
  if (rest) {
    *rest = key;
  } else if (!key.empty()) {
    throw Error(ErrorCategory::kStore,
                "corrupt key in the store: " + std::to_string(key.size()) + " trailing bytes");
  }
  return values;
}

}  // namespace pgseed
