#include "store/row_codec.h"

#include <bit>
#include <charconv>
#include <limits>
#include <optional>
#include <vector>

#include "pgseed/error.h"
#include "common/byte_reader.h"
#include "common/bytes.h"
#include "model/value_codec.h"

namespace pgseed {

namespace {

uint32_t base_oid(const ColumnDef& c) {
  return c.base_type_oid != 0 ? c.base_type_oid : c.type_oid;
}

// The int64 of a decimal text, only when printing it gives the same text back ("007",
// "-0" and "+1" do not). parse_int64 takes an optional '-' and digits only, so what is
// left to rule out is a leading zero: printing writes none, nor "-0".
std::optional<int64_t> canonical_int(std::string_view t) {
  int64_t v = 0;
  if (!parse_int64(t, v)) return std::nullopt;
  const size_t digits = t[0] == '-' ? 1 : 0;
  if (t[digits] == '0' && t.size() != 1) return std::nullopt;
  return v;
}

// The double of a float text, including PostgreSQL's spellings of the values
// parse_float_exact leaves out. Whether it prints back is checked by the caller.
std::optional<double> parse_float_text(std::string_view t) {
  if (t == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (t == "Infinity") return std::numeric_limits<double>::infinity();
  if (t == "-Infinity") return -std::numeric_limits<double>::infinity();
  if (t == "-0") return -0.0;
  return parse_float_exact(t);
}

// A bytea's hex text (\x and lowercase digit pairs) as a bytes cell, decoded in one pass
// straight into `out`; false, and `out` as it was, for any other text (uppercase digits
// would not print back the same).
bool append_bytea_cell(std::string& out, std::string_view t) {
  if (t.size() < 2 || t[0] != '\\' || t[1] != 'x' || t.size() % 2 != 0) return false;
  const size_t at = out.size();
  const size_t n = (t.size() - 2) / 2;
  out.push_back(static_cast<char>(RowCodec::kBytes));
  append_varint(out, n);
  const size_t head = out.size();
  out.resize(head + n);
  char* p = out.data() + head;
  auto digit = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  for (size_t i = 0; i < n; ++i) {
    int hi = digit(t[2 + 2 * i]), lo = digit(t[3 + 2 * i]);
    if ((hi | lo) < 0) {
      out.resize(at);
      return false;
    }
    p[i] = static_cast<char>((hi << 4) | lo);
  }
  return true;
}

void append_text_cell(std::string& out, RowCodec::Tag tag, std::string_view bytes) {
  out.push_back(static_cast<char>(tag));
  append_varint(out, bytes.size());
  out.append(bytes);
}

// Tries the typed cell for a float text; false when it would not print back as `t`.
bool append_float_cell(std::string& out, std::string_view t, bool float4) {
  std::optional<double> d = parse_float_text(t);
  if (!d) return false;
  thread_local std::string printed;
  printed.clear();
  if (float4) {
    float f = static_cast<float>(*d);
    append_float4(printed, f);
    if (printed != t) return false;
    out.push_back(static_cast<char>(RowCodec::kFloat4));
    append_be(out, std::bit_cast<uint32_t>(f), 4);
  } else {
    append_float8(printed, *d);
    if (printed != t) return false;
    out.push_back(static_cast<char>(RowCodec::kFloat8));
    append_be(out, std::bit_cast<uint64_t>(*d), 8);
  }
  return true;
}

}  // namespace

void RowCodec::append_count(std::string& out, uint64_t count) { append_varint(out, count); }

void RowCodec::append_cell(std::string& out, const ColumnDef& column, const Datum& value) {
  switch (value.kind) {
    case Datum::Kind::kNull:
      append_null(out);
      return;
    case Datum::Kind::kUnchanged:
      throw Error(ErrorCategory::kInternal,
                  "column " + column.name + ": an unchanged TOAST value has no text to store");
    case Datum::Kind::kText:
      break;
  }
  std::string_view t = value.text;
  switch (column.storage) {
    case StorageClass::kInteger:
      if (auto v = canonical_int(t)) {
        out.push_back(static_cast<char>(kInt));
        uint64_t u = static_cast<uint64_t>(*v);
        append_varint(out, (u << 1) ^ (*v < 0 ? ~uint64_t{0} : 0));
        return;
      }
      break;
    case StorageClass::kReal:
      if (append_float_cell(out, t, base_oid(column) == kFloat4Oid)) return;
      break;
    case StorageClass::kBool:
      if (t == "t" || t == "f") {
        out.push_back(static_cast<char>(t == "t" ? kTrue : kFalse));
        return;
      }
      break;
    case StorageClass::kBytes:
      if (append_bytea_cell(out, t)) return;
      break;
    case StorageClass::kText:
      break;
  }
  append_text_cell(out, kText, t);
}

void RowCodec::encode(std::string& out, std::span<const ColumnDef> columns,
                      std::span<const Datum> values) {
  if (columns.size() != values.size())
    throw Error(ErrorCategory::kInternal, "row has " + std::to_string(values.size()) +
                                              " values for " + std::to_string(columns.size()) +
                                              " columns");
  append_count(out, columns.size());
  for (size_t i = 0; i < columns.size(); ++i) append_cell(out, columns[i], values[i]);
}

void RowCodec::decode(std::string_view encoded, std::string& scratch, Row& out) {
  // Cells are located first and turned into views at the end, since `scratch` may move
  // while it grows.
  struct Cell {
    Datum::Kind kind;
    bool in_scratch;
    size_t off;
    size_t len;
  };
  thread_local std::vector<Cell> cells;
  cells.clear();
  scratch.clear();
  out.clear();
  ByteReader in({reinterpret_cast<const uint8_t*>(encoded.data()), encoded.size()}, "row");
  try {
    uint64_t count = read_varint(in, "cell count");
    if (count > in.remaining())  // every cell takes at least its tag byte
      throw Error(ErrorCategory::kDecode, "cell count " + std::to_string(count) +
                                              " exceeds the row's " +
                                              std::to_string(in.remaining()) + " bytes");
    for (uint64_t i = 0; i < count; ++i) {
      uint8_t tag = in.read_u8("cell tag");
      size_t start = scratch.size();
      switch (tag) {
        case kNull:
          cells.push_back({Datum::Kind::kNull, false, 0, 0});
          continue;
        case kInt: {
          uint64_t z = read_varint(in, "integer");
          int64_t v = static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
          char buf[24];
          auto res = std::to_chars(buf, buf + sizeof(buf), v);
          scratch.append(buf, res.ptr);
          break;
        }
        case kFloat8:
          append_float8(scratch, std::bit_cast<double>(in.read_u64("float8")));
          break;
        case kFloat4:
          append_float4(scratch, std::bit_cast<float>(in.read_u32("float4")));
          break;
        case kFalse:
          scratch += 'f';
          break;
        case kTrue:
          scratch += 't';
          break;
        case kBytes: {
          uint64_t n = read_varint(in, "bytea length");
          if (n > in.remaining())
            throw Error(ErrorCategory::kDecode, "bytea length exceeds the row");
          append_bytea_hex(scratch, in.read_text(static_cast<size_t>(n), "bytea"));
          break;
        }
        case kText: {
          uint64_t n = read_varint(in, "text length");
          if (n > in.remaining())
            throw Error(ErrorCategory::kDecode, "text length exceeds the row");
          size_t off = in.position();
          in.read_text(static_cast<size_t>(n), "text");
          cells.push_back({Datum::Kind::kText, false, off, static_cast<size_t>(n)});
          continue;
        }
        default:
          throw Error(ErrorCategory::kDecode, "unknown cell tag " + std::to_string(tag));
      }
      cells.push_back({Datum::Kind::kText, true, start, scratch.size() - start});
    }
    in.expect_end("row");
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::kDecode) throw;
    throw Error(ErrorCategory::kStore, std::string("corrupt row in the store: ") + e.what());
  }
  out.reserve(cells.size());
  for (const Cell& c : cells) {
    if (c.kind == Datum::Kind::kNull) {
      out.push_back(Datum::null());
    } else {
      const char* base = c.in_scratch ? scratch.data() : encoded.data();
      out.push_back(Datum::of(std::string_view(base + c.off, c.len)));
    }
  }
}

}  // namespace pgseed
