#include "store/store.h"

#include <filesystem>

#include "pgseed/error.h"
#include "store/rocksdb_reader.h"
#include "store/rocksdb_store.h"
#include "store/sqlite_store.h"

namespace pgseed {

const char* phase_name(StoreState::Phase p) {
  switch (p) {
    case StoreState::Phase::kEmpty: return "empty";
    case StoreState::Phase::kCopying: return "copying";
    case StoreState::Phase::kStreaming: return "streaming";
  }
  return "unknown";
}

StoreUri StoreUri::parse(const std::string& uri) {
  auto colon = uri.find(':');
  if (colon != std::string::npos && colon > 1) {  // "C:" style paths are not schemes
    std::string scheme = uri.substr(0, colon);
    std::string path = uri.substr(colon + 1);
    if (scheme == "sqlite" || scheme == "rocksdb") {
      if (path.empty())
        throw Error(ErrorCategory::kConfiguration, "store '" + uri + "' has no path");
      return {scheme, path};
    }
    bool looks_like_scheme = true;
    for (char c : scheme)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+')) looks_like_scheme = false;
    if (looks_like_scheme)
      throw Error(ErrorCategory::kConfiguration,
                  "unknown store scheme '" + scheme + ":' (use sqlite:PATH or rocksdb:PATH)");
  }
  if (uri.empty()) throw Error(ErrorCategory::kConfiguration, "empty store path");
  return {"sqlite", uri};
}

bool StoreReader::lookup(const TableDef& def, std::span<const std::string> key,
                   const std::function<void(const Row&)>& fn) const {
  std::vector<size_t> key_cols(key.size());
  size_t n = 0;
  for (size_t i = 0; i < def.columns.size(); ++i)
    if (int kp = def.columns[i].key_position; kp > 0 && size_t(kp) <= key.size()) key_cols[kp - 1] = i, ++n;
  if (n != key.size() || key.empty())
    throw Error(ErrorCategory::kConfiguration, "table " + def.qualified() + " has a key of " +
                                                   std::to_string(n) + " columns, not " +
                                                   std::to_string(key.size()));
  bool found = false;
  scan(def, [&](const Row& row) {
    if (found) return;
    for (size_t k = 0; k < key.size(); ++k)
      if (row[key_cols[k]].is_null() || row[key_cols[k]].text != key[k]) return;
    found = true;
    fn(row);
  });
  return found;
}

std::unique_ptr<Store> Store::open(const std::string& uri, bool must_exist) {
  StoreUri u = StoreUri::parse(uri);
  if (u.scheme == "rocksdb") return open_rocksdb_store(u.path, must_exist);
  return open_sqlite_store(u.path, must_exist);
}

std::unique_ptr<StoreReader> StoreReader::open(const std::string& uri) {
  StoreUri u = StoreUri::parse(uri);
  if (u.scheme == "rocksdb") return open_rocksdb_reader(u.path);
  return open_sqlite_store(u.path, /*must_exist=*/true);
}

void Store::remove(const std::string& uri) {
  StoreUri u = StoreUri::parse(uri);
  std::error_code ec;
  std::filesystem::remove_all(u.path, ec);
  if (u.scheme == "sqlite") remove_sqlite_side_files(u.path);
}

}  // namespace pgseed
