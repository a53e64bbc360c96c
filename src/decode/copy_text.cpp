#include "decode/copy_text.h"

#include <cstring>
#include <string>

#include "common/bytes.h"
#include "pgseed/error.h"

namespace pgseed {

namespace {

constexpr char kDelimiter = '\t';

// Position of the first `c` in s[from, end), or end.
size_t find_byte(std::string_view s, size_t from, char c) {
  const void* hit = std::memchr(s.data() + from, c, s.size() - from);
  return hit ? static_cast<size_t>(static_cast<const char*>(hit) - s.data()) : s.size();
}

// Number of backslashes immediately before position `pos`.
size_t backslashes_before(std::string_view s, size_t pos) {
  size_t n = 0;
  while (n < pos && s[pos - 1 - n] == '\\') ++n;
  return n;
}

// A tab is a delimiter unless an odd run of backslashes precedes it (then the last one
// escapes it). A run always starts fresh: no escape ends in a backslash, so the byte
// before the run cannot have consumed its first backslash.
size_t count_fields(std::string_view line) {
  size_t fields = 1;
  for (size_t t = find_byte(line, 0, kDelimiter); t < line.size();
       t = find_byte(line, t + 1, kDelimiter)) {
    if (backslashes_before(line, t) % 2 == 0) ++fields;
  }
  return fields;
}

bool is_octal(char c) { return c >= '0' && c <= '7'; }

[[noreturn]] void fail(const std::string& what) {
  throw Error(ErrorCategory::kDecode, "malformed COPY text row: " + what);
}

// Unescapes the field starting at `pos` (whose first backslash is at `bs`) into a new text
// cell and returns the position of the delimiter or line end that ends it. The line has
// been validated: every backslash is followed by a character.
size_t parse_escaped_field(std::string_view line, size_t pos, size_t bs, RowBatch& out) {
  out.begin_text();
  size_t tab = find_byte(line, pos, kDelimiter);
  for (;;) {
    if (tab < bs) {  // the field ends before the next backslash
      out.append_to_text(line.substr(pos, tab - pos));
      return tab;
    }
    if (bs == line.size()) {
      out.append_to_text(line.substr(pos));
      return line.size();
    }
    out.append_to_text(line.substr(pos, bs - pos));
    size_t i = bs + 1;
    char c = line[i++];
    switch (c) {
      case 'b': out.append_char('\b'); break;
      case 'f': out.append_char('\f'); break;
      case 'n': out.append_char('\n'); break;
      case 'r': out.append_char('\r'); break;
      case 't': out.append_char('\t'); break;
      case 'v': out.append_char('\v'); break;
      case 'x': {
        int hi = i < line.size() ? hex_value(line[i]) : -1;
        if (hi < 0) {
          out.append_char('x');
          break;
        }
        ++i;
        int value = hi;
        int lo = i < line.size() ? hex_value(line[i]) : -1;
        if (lo >= 0) {
          value = (value << 4) | lo;
          ++i;
        }
        out.append_char(static_cast<char>(value));
        break;
      }
      default:
        if (is_octal(c)) {
          int value = c - '0';
          for (int k = 0; k < 2 && i < line.size() && is_octal(line[i]); ++k)
            value = (value << 3) | (line[i++] - '0');
          out.append_char(static_cast<char>(value & 0xFF));
        } else {
          out.append_char(c);  // \\, an escaped delimiter, or any other character
        }
    }
    pos = i;
    if (tab < pos) tab = find_byte(line, pos, kDelimiter);  // the tab was escaped
    bs = find_byte(line, pos, '\\');
  }
}

}  // namespace

void parse_copy_text_line(std::string_view line, size_t expected_columns, RowBatch& out) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);

  if (expected_columns == 0) {
    if (!line.empty()) fail("expected no columns, got data");
    out.end_row();
    return;
  }
  if (backslashes_before(line, line.size()) % 2 != 0) fail("line ends in a lone backslash");
  size_t fields = count_fields(line);
  if (fields != expected_columns)
    fail("expected " + std::to_string(expected_columns) + " columns, got " +
         std::to_string(fields));

  size_t pos = 0;
  size_t next_bs = find_byte(line, 0, '\\');
  for (size_t col = 0; col < expected_columns; ++col) {
    if (col > 0) ++pos;  // skip the delimiter
    if (next_bs < pos) next_bs = find_byte(line, pos, '\\');
    size_t end;
    if (next_bs == pos && line.size() - pos >= 2 && line[pos + 1] == 'N' &&
        (pos + 2 == line.size() || line[pos + 2] == kDelimiter)) {
      out.add_null();
      end = pos + 2;
    } else {
      size_t tab = find_byte(line, pos, kDelimiter);
      if (tab < next_bs || next_bs == line.size()) {  // fast path: no backslash in the field
        out.add_text(line.substr(pos, tab - pos));
        end = tab;
      } else {
        end = parse_escaped_field(line, pos, next_bs, out);
      }
    }
    pos = end;
  }
  out.end_row();
}

}  // namespace pgseed
