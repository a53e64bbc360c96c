// parse_copy_text_line: hand-written rows, and COPY text captured from PostgreSQL 15
// (tests/data/values/, made by capture.py) checked against the server's own CSV of the
// same rows.
#include "decode/copy_text.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pgseed/error.h"
#include "model/value_codec.h"

namespace pgseed {
namespace {

// One parsed row as (is_null, text) pairs, for easy comparison.
struct Value {
  bool null;
  std::string text;
  bool operator==(const Value&) const = default;
};
Value N() { return {true, {}}; }
Value T(std::string s) { return {false, std::move(s)}; }

std::ostream& operator<<(std::ostream& os, const Value& v) {
  return v.null ? os << "NULL" : os << '"' << v.text << '"';
}

std::vector<Value> parse(std::string_view line, size_t columns) {
  RowBatch batch;
  parse_copy_text_line(line, columns, batch);
  EXPECT_EQ(batch.rows(), 1u);
  Row row;
  batch.row(0, row);
  std::vector<Value> out;
  for (const Datum& d : row) out.push_back(d.is_null() ? N() : T(std::string(d.text)));
  return out;
}

void expect_decode_error(std::string_view line, size_t columns) {
  RowBatch batch;
  batch.add_text("kept");
  batch.end_row();
  size_t bytes = batch.bytes();
  try {
    parse_copy_text_line(line, columns, batch);
    ADD_FAILURE() << "no error for line: " << line;
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::kDecode);
  }
  EXPECT_EQ(batch.rows(), 1u);
  EXPECT_EQ(batch.bytes(), bytes) << "a failed parse must leave the batch unchanged";
}

std::string read_file(const std::string& name) {
  std::ifstream in(std::string(PGSEED_TEST_DATA_DIR) + "/values/" + name, std::ios::binary);
  EXPECT_TRUE(in) << "missing test data file " << name;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Lines including their '\n', as PQgetCopyData hands them out.
std::vector<std::string> copy_lines(const std::string& data) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < data.size()) {
    size_t nl = data.find('\n', start);
    size_t end = nl == std::string::npos ? data.size() : nl + 1;
    lines.push_back(data.substr(start, end - start));
    start = end;
  }
  return lines;
}

// What PostgreSQL's CopyAttributeOutText writes for a value (tab delimiter).
std::string copy_text_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\v': out += "\\v"; break;
      case '\\': out += "\\\\"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

TEST(CopyText, PlainFields) {
  EXPECT_EQ(parse("1\tabc\t\n", 3), (std::vector<Value>{T("1"), T("abc"), T("")}));
  EXPECT_EQ(parse("only\n", 1), (std::vector<Value>{T("only")}));
}

TEST(CopyText, MissingFinalNewlineIsTolerated) {
  EXPECT_EQ(parse("1\tabc", 2), (std::vector<Value>{T("1"), T("abc")}));
}

TEST(CopyText, EmptyLineIsOneEmptyField) {
  EXPECT_EQ(parse("\n", 1), (std::vector<Value>{T("")}));
  EXPECT_EQ(parse("\t\n", 2), (std::vector<Value>{T(""), T("")}));
}

TEST(CopyText, ZeroColumnTable) {
  RowBatch batch;
  parse_copy_text_line("\n", 0, batch);
  EXPECT_EQ(batch.rows(), 1u);
  Row row;
  batch.row(0, row);
  EXPECT_TRUE(row.empty());
  expect_decode_error("x\n", 0);
}

TEST(CopyText, Nulls) {
  EXPECT_EQ(parse("\\N\n", 1), (std::vector<Value>{N()}));
  EXPECT_EQ(parse("\\N\t\\N\t\\N\n", 3), (std::vector<Value>{N(), N(), N()}));
  EXPECT_EQ(parse("a\t\\N\tb\n", 3), (std::vector<Value>{T("a"), N(), T("b")}));
  // Only a whole field `\N` is NULL.
  EXPECT_EQ(parse("\\\\N\t\\Nx\tx\\N\n", 3),
            (std::vector<Value>{T("\\N"), T("Nx"), T("xN")}));
}

TEST(CopyText, NamedEscapes) {
  EXPECT_EQ(parse("\\b\\f\\n\\r\\t\\v\\\\\n", 1),
            (std::vector<Value>{T("\b\f\n\r\t\v\\")}));
  EXPECT_EQ(parse("a\\tb\tc\\nd\n", 2), (std::vector<Value>{T("a\tb"), T("c\nd")}));
}

TEST(CopyText, OctalEscapes) {
  EXPECT_EQ(parse("\\101\\7\\08\\1234\n", 1), (std::vector<Value>{T(std::string("A\a\0" "8S4", 6))}));
  EXPECT_EQ(parse("\\377\n", 1), (std::vector<Value>{T("\xff")}));
  EXPECT_EQ(parse("\\777\n", 1), (std::vector<Value>{T("\xff")}));  // masked to a byte
}

TEST(CopyText, HexEscapes) {
  EXPECT_EQ(parse("\\x41\\x4a\\xA\\xfg\\x\\xz\n", 1),
            (std::vector<Value>{T("AJ\n\x0fgxxz")}));
  EXPECT_EQ(parse("\\x\tb\n", 2), (std::vector<Value>{T("x"), T("b")}));
  EXPECT_EQ(parse("\\x4\n", 1), (std::vector<Value>{T("\x04")}));
}

TEST(CopyText, OtherEscapesStandForTheCharacter) {
  EXPECT_EQ(parse("\\a\\.\\,\\\"\\N\\é\n", 1), (std::vector<Value>{T("a.,\"Né")}));
}

TEST(CopyText, EscapedDelimiterIsData) {
  EXPECT_EQ(parse("a\\\tb\tc\n", 2), (std::vector<Value>{T("a\tb"), T("c")}));
  EXPECT_EQ(parse("a\\\\\tb\n", 2), (std::vector<Value>{T("a\\"), T("b")}));
  EXPECT_EQ(parse("\\\t\n", 1), (std::vector<Value>{T("\t")}));
}

TEST(CopyText, WrongColumnCountIsAnError) {
  expect_decode_error("a\tb\n", 1);
  expect_decode_error("a\tb\n", 3);
  expect_decode_error("a\\\tb\n", 2);  // the tab is escaped: one field
  expect_decode_error("\n", 2);
}

TEST(CopyText, LoneTrailingBackslashIsAnError) {
  expect_decode_error("abc\\\n", 1);
  expect_decode_error("abc\\", 1);
  expect_decode_error("a\\\\\\\n", 1);
  EXPECT_EQ(parse("abc\\\\\n", 1), (std::vector<Value>{T("abc\\")}));
}

TEST(CopyText, ManyRowsInOneBatch) {
  RowBatch batch;
  for (int i = 0; i < 1000; ++i) {
    std::string line = std::to_string(i) + "\tv\\t" + std::to_string(i) + "\t\\N\n";
    parse_copy_text_line(line, 3, batch);
  }
  ASSERT_EQ(batch.rows(), 1000u);
  Row row;
  batch.row(537, row);
  ASSERT_EQ(row.size(), 3u);
  EXPECT_EQ(row[0].text, "537");
  EXPECT_EQ(row[1].text, "v\t537");
  EXPECT_TRUE(row[2].is_null());
}

// The server's text COPY of tricky strings, parsed, must print as the server's CSV COPY of
// the same rows, and re-escape to the very same text lines.
void check_capture(const std::string& copy_file, const std::string& csv_file, size_t columns) {
  const std::string copy = read_file(copy_file);
  const std::string expected_csv = read_file(csv_file);
  const auto lines = copy_lines(copy);
  ASSERT_GT(lines.size(), 30u);
  RowBatch batch;
  for (const auto& line : lines) parse_copy_text_line(line, columns, batch);
  ASSERT_EQ(batch.rows(), lines.size());

  std::string csv;
  Row row;
  for (size_t i = 0; i < batch.rows(); ++i) {
    batch.row(i, row);
    std::string text_line;
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) {
        csv.push_back(',');
        text_line.push_back('\t');
      }
      append_csv_field(csv, row[c], columns == 1);
      text_line += row[c].is_null() ? "\\N" : copy_text_escape(row[c].text);
    }
    csv.push_back('\n');
    text_line.push_back('\n');
    EXPECT_EQ(text_line, lines[i]) << "row " << i;
  }
  EXPECT_EQ(csv, expected_csv);
}

TEST(CopyText, CapturedTrickyTextMatchesServerCsv) {
  check_capture("cap_text.copy", "cap_text.csv", 3);
}

TEST(CopyText, CapturedSingleColumnMatchesServerCsv) {
  check_capture("cap_one.copy", "cap_one.csv", 1);
}

TEST(CopyText, CapturedValuesMatchServerJson) {
  // cap_text_json.copy holds to_json(a), to_json(b) of the rows of cap_text.copy.
  const auto text_lines = copy_lines(read_file("cap_text.copy"));
  const auto json_lines = copy_lines(read_file("cap_text_json.copy"));
  ASSERT_EQ(text_lines.size(), json_lines.size());
  RowBatch values, json;
  for (size_t i = 0; i < text_lines.size(); ++i) {
    parse_copy_text_line(text_lines[i], 3, values);
    parse_copy_text_line(json_lines[i], 2, json);
  }
  Row v, j;
  for (size_t i = 0; i < values.rows(); ++i) {
    values.row(i, v);
    json.row(i, j);
    for (size_t c = 0; c < 2; ++c) {
      std::string out;
      append_json_value(out, v[c + 1]);
      EXPECT_EQ(out, j[c].is_null() ? std::string("null") : std::string(j[c].text))
          << "row " << i << " column " << c;
    }
  }
}

}  // namespace
}  // namespace pgseed
