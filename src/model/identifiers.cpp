#include "model/identifiers.h"

#include <algorithm>

#include "pgseed/error.h"

namespace pgseed {

namespace {
// Keywords that PostgreSQL's quote_ident() quotes (reserved and type/function-name
// keywords). Quoting a name that would not need it is still correct SQL.
constexpr std::string_view kKeywords[] = {
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric",
    "authorization", "between", "bigint", "binary", "bit", "boolean", "both", "case", "cast",
    "char", "character", "check", "coalesce", "collate", "collation", "column", "concurrently",
    "constraint", "create", "cross", "current_catalog", "current_date", "current_role",
    "current_schema", "current_time", "current_timestamp", "current_user", "dec", "decimal",
    "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "exists",
    "extract", "false", "fetch", "float", "for", "foreign", "freeze", "from", "full", "grant",
    "greatest", "group", "grouping", "having", "ilike", "in", "initially", "inner", "inout",
    "int", "integer", "intersect", "interval", "into", "is", "isnull", "join", "lateral",
    "leading", "least", "left", "like", "limit", "localtime", "localtimestamp", "national",
    "natural", "nchar", "none", "normalize", "not", "notnull", "null", "nullif", "numeric",
    "offset", "on", "only", "or", "order", "out", "outer", "overlaps", "overlay", "placing",
    "position", "precision", "primary", "real", "references", "returning", "right", "row",
    "select", "session_user", "setof", "similar", "smallint", "some", "substring",
    "symmetric", "table", "tablesample", "then", "time", "timestamp", "to", "trailing",
    "treat", "trim", "true", "union", "unique", "user", "using", "values", "varchar",
    "variadic", "verbose", "when", "where", "window", "with", "xmlattributes", "xmlconcat",
    "xmlelement", "xmlexists", "xmlforest", "xmlnamespaces", "xmlparse", "xmlpi", "xmlroot",
    "xmlserialize", "xmltable"};
}  // namespace

std::string quote_ident(std::string_view id) {
  bool plain = !id.empty() && ((id[0] >= 'a' && id[0] <= 'z') || id[0] == '_');
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) plain = false;
  if (plain && std::find(std::begin(kKeywords), std::end(kKeywords), id) != std::end(kKeywords))
    plain = false;
  if (plain) return std::string(id);
  std::string out = "\"";
  for (char c : id) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

namespace {
// Reads one identifier at text[pos]; advances pos past it.
std::string read_ident(std::string_view text, size_t& pos, std::string_view whole) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCategory::kConfiguration,
                 "invalid table name '" + std::string(whole) + "': " + why);
  };
  while (pos < text.size() && text[pos] == ' ') ++pos;
  std::string out;
  if (pos < text.size() && text[pos] == '"') {
    ++pos;
    for (;;) {
      if (pos >= text.size()) throw bad("unterminated quote");
      if (text[pos] == '"') {
        if (pos + 1 < text.size() && text[pos + 1] == '"') {
          out += '"';
          pos += 2;
          continue;
        }
        ++pos;
        break;
      }
      out += text[pos++];
    }
    if (out.empty()) throw bad("empty quoted identifier");
  } else {
    while (pos < text.size() && text[pos] != '.' && text[pos] != ' ' && text[pos] != '"') {
      char c = text[pos++];
      out += (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
    }
    if (out.empty()) throw bad("empty identifier");
  }
  while (pos < text.size() && text[pos] == ' ') ++pos;
  return out;
}
}  // namespace

QualifiedName parse_qualified_name(std::string_view text) {
  size_t pos = 0;
  std::string first = read_ident(text, pos, text);
  if (pos == text.size()) return {"public", first};
  if (text[pos] != '.')
    throw Error(ErrorCategory::kConfiguration,
                "invalid table name '" + std::string(text) + "': unexpected '" + text[pos] + "'");
  ++pos;
  std::string second = read_ident(text, pos, text);
  if (pos != text.size())
    throw Error(ErrorCategory::kConfiguration,
                "invalid table name '" + std::string(text) + "': expected schema.table");
  return {first, second};
}

std::vector<QualifiedName> parse_name_list(std::string_view text) {
  std::vector<QualifiedName> out;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] == '"') quoted = !quoted;
    if (i == text.size() || (text[i] == ',' && !quoted)) {
      std::string_view part = text.substr(start, i - start);
      if (part.find_first_not_of(' ') != std::string_view::npos)
        out.push_back(parse_qualified_name(part));
      start = i + 1;
    }
  }
  return out;
}

}  // namespace pgseed
