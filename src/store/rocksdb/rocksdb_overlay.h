// The RocksDB store's in-memory view of a transaction's writes (reads-your-writes), and its
// rebuilding from a WriteBatch. How a large transaction spills to the overlay range on disk
// is told in rocksdb_store_impl.h; the code is in rocksdb_overlay_txn.cpp.
#pragma once

#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/rocksdb/rocksdb_layout.h"
#include "store/rocksdb/rocksdb_support.h"

namespace pgseed::rocks {

// A transaction's writes as seen by reads inside it (reads-your-writes): the last write of
// each key held in memory, and the ranges deleted (a key written after a range delete is in
// `writes`, or in the spilled overlay, which are consulted first). `bytes` estimates the
// memory `writes` takes.
struct Overlay {
  static constexpr size_t kEntryOverhead = 128;  // map node, two std::string, allocator

  std::map<std::string, std::optional<std::string>, std::less<>> writes;
  std::vector<std::pair<std::string, std::string>> ranges;
  size_t bytes = 0;

  void set(std::string_view k, std::optional<std::string_view> v) {
    auto it = writes.find(k);
    if (it == writes.end()) {
      bytes += k.size() + (v ? v->size() : 0) + kEntryOverhead;
      writes.emplace(std::string(k), v ? std::optional<std::string>(*v) : std::nullopt);
      return;
    }
    bytes -= it->second ? it->second->size() : 0;
    bytes += v ? v->size() : 0;
    if (v)
      it->second = std::string(*v);
    else
      it->second.reset();
  }
  void put(std::string_view k, std::string_view v) { set(k, v); }
  void del(std::string_view k) { set(k, std::nullopt); }
  void del_range(std::string_view b, std::string_view e) {
    auto first = writes.lower_bound(b), last = writes.lower_bound(e);
    for (auto it = first; it != last; ++it)
      bytes -= it->first.size() + (it->second ? it->second->size() : 0) + kEntryOverhead;
    writes.erase(first, last);
    // Keep the list short: a range inside one already deleted adds nothing.
    for (const auto& [rb, re] : ranges)
      if (rb <= b && e <= re) return;
    std::erase_if(ranges, [&](const auto& r) { return b <= r.first && r.second <= e; });
    ranges.emplace_back(b, e);
  }
  bool range_deleted(std::string_view k) const {
    for (const auto& [b, e] : ranges)
      if (k >= b && k < e) return true;
    return false;
  }
  void clear_writes() {
    writes.clear();
    bytes = 0;
  }
  void clear() {
    clear_writes();
    ranges.clear();
  }
};

// Rebuilds an Overlay from a WriteBatch (after bulk inserts skipped indexing).
class OverlayBuilder : public rocksdb::WriteBatch::Handler {
 public:
  explicit OverlayBuilder(Overlay& o) : o_(o) {}
  rocksdb::Status PutCF(uint32_t, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
    o_.put(view(k), view(v));
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteCF(uint32_t, const rocksdb::Slice& k) override {
    o_.del(view(k));
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteRangeCF(uint32_t, const rocksdb::Slice& b,
                                const rocksdb::Slice& e) override {
    o_.del_range(view(b), view(e));
    return rocksdb::Status::OK();
  }

 private:
  Overlay& o_;
};

}  // namespace pgseed::rocks
