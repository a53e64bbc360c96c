// The one check every command that connects a store to a source makes first: the store was
// made from this source's cluster (system identifier) and database. A store made from
// another is refused before anything touches it (DESIGN.md: identity is checked before
// anything else, by every command).
#pragma once

#include <string>

#include "pg/replication_connection.h"
#include "store/store.h"

namespace pgseed {

// Throws Error(kStore) naming both sides when `id` is not the source `st` was made from.
// A store that holds no source yet (phase kEmpty) matches any.
void require_same_source(const StoreState& st, const pg::SystemIdentity& id, const std::string& store);

// The same, asking `source` who it is (IDENTIFY_SYSTEM over a replication connection).
void require_same_source(const StoreState& st, const std::string& source, const std::string& store);

}  // namespace pgseed
