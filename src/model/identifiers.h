// PostgreSQL identifiers: quoting and parsing of `schema.table` names as SQL writes them.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgseed {

// Quotes like PostgreSQL's quote_ident(): bare when the name is a lower-case plain word
// that is not a keyword, double-quoted (with quotes doubled) otherwise.
std::string quote_ident(std::string_view id);

struct QualifiedName {
  std::string schema;
  std::string name;
  bool operator==(const QualifiedName&) const = default;
};

// Parses `public."Order Items"`, `"Sch ema"."a,b"`, `Orders` (folded to lower case, as
// PostgreSQL does for unquoted names); an unqualified name means schema `public`.
// Throws Error(kConfiguration) for malformed names.
QualifiedName parse_qualified_name(std::string_view text);

// Splits a comma-separated list of names; commas inside double quotes do not split.
std::vector<QualifiedName> parse_name_list(std::string_view text);

}  // namespace pgseed
