// The one list of store kinds every test parametrised over stores runs with
// (INSTANTIATE_TEST_SUITE_P(..., ::testing::ValuesIn(test_support::kStoreKinds))). A new
// store is added here, and every such test, the store conformance suite first, runs on it.
#pragma once

#include <string>
#include <vector>

namespace pgseed::test_support {

inline const std::vector<std::string> kStoreKinds = {"sqlite", "rocksdb"};

}  // namespace pgseed::test_support
