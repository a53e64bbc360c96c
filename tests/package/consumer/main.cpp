// Uses the installed public API only: parse an LSN, open a store that does not exist.
#include <pgseed/error.h>
#include <pgseed/lsn.h>
#include <pgseed/sync.h>

#include <cstdio>

int main() {
  pgseed::Lsn lsn = pgseed::Lsn::parse("16/B374D848");
  if (lsn.str() != "16/B374D848") return 1;
  pgseed::SyncOptions options;
  options.source = "host=127.0.0.1 port=1 connect_timeout=2";
  options.store = "sqlite:/nonexistent-dir/x.db";
  try {
    pgseed::Sync(options).run();
  } catch (const pgseed::Error& e) {
    std::printf("expected error (%s): %s\n", pgseed::category_name(e.category()), e.what());
    return 0;
  }
  return 2;
}
