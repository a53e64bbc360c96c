#include "model/table_def.h"

#include "model/identifiers.h"

namespace pgseed {

bool TableDef::same_columns(const TableDef& other) const {
  if (columns.size() != other.columns.size()) return false;
  for (size_t i = 0; i < columns.size(); ++i) {
    const ColumnDef& a = columns[i];
    const ColumnDef& b = other.columns[i];
    if (a.name != b.name || a.type_oid != b.type_oid || a.key_position != b.key_position)
      return false;
    // attnum and the type modifier are compared only where both sides know them (a store
    // written by an older pgseed has neither).
    if (a.attnum != 0 && b.attnum != 0 && (a.attnum != b.attnum || a.type_mod != b.type_mod))
      return false;
  }
  return true;
}

std::string TableDef::qualified() const { return quote_ident(schema) + "." + quote_ident(name); }

}  // namespace pgseed
