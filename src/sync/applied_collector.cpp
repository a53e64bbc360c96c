#include "sync/applied_collector.h"

#include <algorithm>
#include <string>
#include <utility>

#include "decode/replication_frame.h"

namespace pgseed {

void AppliedCollector::begin(Lsn commit_lsn, int64_t commit_time) {
  if (!active()) return;
  current_ = AppliedTransaction{};
  current_.commit_lsn = commit_lsn;
  current_.commit_time = format_pg_timestamp(commit_time);
}

void AppliedCollector::change(const TableDef& def, ChangeKind kind, std::span<const Datum> row) {
  if (!active() || current_.changes.size() >= kMaxChanges) return;
  AppliedTransaction::Change c;
  c.table = def.qualified();
  c.kind = kind;
  // Key values in key order (what Replica::lookup takes); every column without a key.
  bool keyed = def.has_key();
  std::vector<std::pair<int, size_t>> order;
  for (size_t i = 0; i < row.size() && i < def.columns.size(); ++i)
    if (!keyed || def.columns[i].key_position > 0)
      order.push_back({keyed ? def.columns[i].key_position : int(i), i});
  std::sort(order.begin(), order.end());
  for (const auto& [pos, i] : order)
    c.key.push_back(row[i].kind == Datum::Kind::kText ? std::string(row[i].text) : std::string());
  current_.changes.push_back(std::move(c));
}

void AppliedCollector::update(const TableDef& def, std::span<const Datum> old_row, std::span<const Datum> new_row) {
  if (!old_row.empty()) change(def, ChangeKind::kDelete, old_row);
  change(def, ChangeKind::kUpdate, new_row);
}

void AppliedCollector::end() {
  if (active()) undelivered_.push_back(std::move(current_));
}

void AppliedCollector::deliver() {
  for (const auto& t : undelivered_) on_commit_(t);
  undelivered_.clear();
}

void AppliedCollector::discard() {
  undelivered_.clear();
  current_ = AppliedTransaction{};
}

}  // namespace pgseed
