// CopyBinaryParser on hand-built messages in PostgreSQL 15's binary COPY layout (its
// agreement with the server's text for real values: integration/test_copy_binary.cpp), and
// plan_binary_copy's choice of tables.
#include <gtest/gtest.h>

#include "decode/copy_binary.h"
#include "model/pg_type.h"
#include "pgseed/error.h"

namespace pgseed {
namespace {

std::string be16(int v) { return {char((v >> 8) & 0xff), char(v & 0xff)}; }
std::string be32(int64_t v) {
  return {char((v >> 24) & 0xff), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)};
}
std::string field(const std::string& bytes) { return be32(int64_t(bytes.size())) + bytes; }
std::string header() { return std::string("PGCOPY\n\377\r\n\0", 11) + be32(0) + be32(0); }
// numeric_send: ndigits, weight, sign, dscale, base-10000 digits.
std::string numeric(int weight, int sign, int dscale, std::vector<int> digits) {
  std::string s = be16(int(digits.size())) + be16(weight) + be16(sign) + be16(dscale);
  for (int d : digits) s += be16(d);
  return s;
}

std::vector<std::string> texts(const RowBatch& b) {
  std::vector<std::string> out;
  Row row;
  for (size_t i = 0; i < b.rows(); ++i) {
    b.row(i, row);
    for (const Datum& d : row) out.push_back(d.is_null() ? "<null>" : std::string(d.text));
  }
  return out;
}

TEST(CopyBinaryParser, ReadsHeaderRowsAndTrailer) {
  CopyBinaryParser p({BinaryField::kNumeric, BinaryField::kText, BinaryField::kDate});
  RowBatch b;
  EXPECT_TRUE(p.parse(header() + be16(3) + field(numeric(0, 0, 4, {123, 4500})) + field("x\ty") +
                          be32(-1),
                      b));
  EXPECT_TRUE(p.parse(be16(3) + field(numeric(-2, 0x4000, 9, {12, 3400})) + be32(-1) +
                          field(be32(-730119)),
                      b));
  EXPECT_TRUE(p.parse(be16(3) + field(numeric(1, 0, 0, {1})) + field("") + field(be32(0x7fffffff)), b));
  EXPECT_FALSE(p.parse(be16(-1), b));
  EXPECT_EQ(b.rows(), 3u);
  EXPECT_EQ(texts(b), (std::vector<std::string>{"123.4500", "x\ty", "<null>",                //
                                                "-0.000000123", "<null>", "0001-01-01",      //
                                                "10000", "", "infinity"}));
}

TEST(CopyBinaryParser, MalformedMessagesThrowAndLeaveNoPartialRow) {
  const std::vector<BinaryField> fields{BinaryField::kInt4, BinaryField::kNumeric};
  const std::string good = be16(2) + field(be32(7)) + field(numeric(0, 0, 0, {7}));
  const std::vector<std::pair<std::string, std::string>> bad{
      {"no header", good},
      {"three fields", header() + be16(3) + field(be32(7)) + field(be32(7)) + field(be32(7))},
      {"int4 of 3 bytes", header() + be16(2) + field("abc") + field(numeric(0, 0, 0, {7}))},
      {"digit 10000", header() + be16(2) + field(be32(7)) + field(numeric(0, 0, 0, {10000}))},
      {"numeric sign", header() + be16(2) + field(be32(7)) + field(numeric(0, 0x1234, 0, {7}))},
      {"cut short", header() + be16(2) + field(be32(7)) + be32(100) + "abc"},
      {"trailing bytes", header() + good + "z"},
      {"negative length", header() + be16(2) + field(be32(7)) + be32(-2)},
  };
  for (const auto& [what, msg] : bad) {
    CopyBinaryParser p(fields);
    RowBatch b;
    if (what != "no header") {  // a good row first: it must stay
      ASSERT_TRUE(p.parse(header() + good, b)) << what;
    }
    std::string m = what == "no header" ? msg : msg.substr(header().size());
    EXPECT_THROW(p.parse(m, b), Error) << what;
    EXPECT_EQ(b.rows(), what == "no header" ? 0u : 1u) << what;
    const std::vector<std::string> kept =
        what == "no header" ? std::vector<std::string>{} : std::vector<std::string>{"7", "7"};
    EXPECT_EQ(texts(b), kept) << what;
    // The batch goes on cleanly after the failure.
    b.add_text("a");
    b.add_text("b");
    b.end_row();
    Row row;
    b.row(b.rows() - 1, row);
    EXPECT_EQ(row[0].text, "a") << what;
  }
  CopyBinaryParser p(fields);
  RowBatch b;
  EXPECT_THROW(p.parse(header() + be16(-1) + "x", b), Error);
}

ColumnDef col(uint32_t oid) {
  ColumnDef c;
  c.base_type_oid = oid;
  return c;
}

TEST(PlanBinaryCopy, OnlyWhereATypeCostsTheServerAndEveryCastIsItsOutput) {
  const uint32_t kInet = 869, kJsonb = 3802;
  EXPECT_FALSE(plan_binary_copy({col(kInt8Oid), col(kInt4Oid), col(kBoolOid), col(kTextOid)}, {}));
  EXPECT_FALSE(plan_binary_copy({col(kInt8Oid), col(kJsonb)}, {false, false}));
  auto plan = plan_binary_copy({col(kInt8Oid), col(kNumericOid), col(kJsonb), col(kBpcharOid)},
                               {false, false, false, false});
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->cast_to_text, (std::vector<bool>{false, false, true, false}));
  EXPECT_EQ(plan->fields[3], BinaryField::kText);  // bpchar as it is: its cast drops the padding
  EXPECT_FALSE(plan_binary_copy({col(kTimestamptzOid), col(kInet)}, {false, true}));
  EXPECT_FALSE(plan_binary_copy({col(kTimestamptzOid), col(kJsonb)}, {}));  // casts unknown
  EXPECT_TRUE(plan_binary_copy({col(kByteaOid)}, {}));
}

}  // namespace
}  // namespace pgseed
