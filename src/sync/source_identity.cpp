#include "sync/source_identity.h"

#include "pgseed/error.h"

namespace pgseed {

void require_same_source(const StoreState& st, const pg::SystemIdentity& id, const std::string& store) {
  if (st.phase == StoreState::Phase::kEmpty) return;
  if (st.system_id != id.system_id || st.database != id.database)
    throw Error(ErrorCategory::kStore,
                "store " + store + " was made from database '" + st.database + "' of system " +
                    st.system_id + ", not from '" + id.database + "' of system " + id.system_id +
                    "; it is left as it is (use the source it was made from, or another store)");
}

void require_same_source(const StoreState& st, const std::string& source, const std::string& store) {
  if (st.phase == StoreState::Phase::kEmpty) return;
  pg::ReplicationConnection repl = pg::ReplicationConnection::open(source);
  require_same_source(st, repl.identify_system(), store);
}

}  // namespace pgseed
