// Replica: the public read API over a Store.
#include "pgseed/replica.h"

#include "api/replica_state.h"
#include "model/identifiers.h"
#include "pgseed/error.h"
#include "pgseed/sync.h"
#include "store/store.h"
#include "model/value_codec.h"

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

namespace pgseed {

struct Replica::Impl {
  std::unique_ptr<StoreReader> store;
  bool pinned = false;
  mutable std::mutex mu;  // one call at a time (replica.h, "Thread-safety")
  mutable std::atomic<std::thread::id> scanning{};  // the thread inside a scan()'s callback

  // Metadata cache: the tables as of tables_version, and names as callers spelled them.
  mutable std::optional<uint64_t> tables_version;
  mutable std::vector<TableDef> tables;
  mutable std::unordered_map<std::string, size_t> by_name;

  // One call: the lock, the view (not pinned: the last commit, released after the call),
  // the tables as that view has them.
  class Call {
   public:
    explicit Call(const Impl& impl) : impl_(impl), lock_(impl.mu, std::defer_lock) {
      if (impl.scanning.load() == std::this_thread::get_id())
        throw Error(ErrorCategory::kInternal, "a Replica was called from inside its own scan()");
      lock_.lock();
      if (!impl_.pinned) {
        impl_.store->refresh();
        refreshed_ = true;
      }
      impl_.sync_tables();
    }
    ~Call() {
      if (refreshed_) impl_.store->release();
    }
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;

   private:
    const Impl& impl_;
    std::unique_lock<std::mutex> lock_;
    bool refreshed_ = false;
  };

  void sync_tables() const {
    uint64_t v = store->tables_version();
    if (tables_version && *tables_version == v) return;
    tables = store->tables();
    by_name.clear();
    tables_version = v;
  }

  const TableDef& find(const std::string& name) const {
    if (auto it = by_name.find(name); it != by_name.end()) return tables[it->second];
    QualifiedName q = parse_qualified_name(name);
    for (size_t i = 0; i < tables.size(); ++i)
      if (tables[i].schema == q.schema && tables[i].name == q.name) {
        by_name.emplace(name, i);
        return tables[i];
      }
    throw Error(ErrorCategory::kConfiguration, "the store has no table " + name);
  }
};

namespace {
Values to_values(const Row& row) {
  Values v;
  v.reserve(row.size());
  for (const auto& d : row) v.push_back(d.is_null() ? Value() : Value(std::string(d.text)));
  return v;
}
}  // namespace

Replica::Replica(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Replica::~Replica() = default;

std::unique_ptr<Replica> Replica::open(const std::string& store, const ReplicaOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->store = StoreReader::open(store);
  impl->pinned = options.pinned;
  if (impl->pinned) impl->store->refresh();
  return std::unique_ptr<Replica>(new Replica(std::move(impl)));
}

void Replica::refresh() {
  if (impl_->scanning.load() == std::this_thread::get_id())
    throw Error(ErrorCategory::kInternal, "a Replica was called from inside its own scan()");
  std::lock_guard lock(impl_->mu);
  if (impl_->pinned) impl_->store->refresh();
}

ReplicaState Replica::state() const {
  Impl::Call call(*impl_);
  return to_replica_state(impl_->store->state());
}

std::vector<TableInfo> Replica::tables() const {
  Impl::Call call(*impl_);
  std::vector<TableInfo> out;
  for (const auto& t : impl_->tables) {
    TableInfo ti;
    ti.name = t.qualified();
    ti.schema = t.schema;
    ti.table = t.name;
    ti.sqlite_table = t.sqlite_name;
    ti.has_key = t.has_key();
    for (const auto& c : t.columns) ti.columns.push_back({c.name, c.type_name, c.key_position});
    out.push_back(std::move(ti));
  }
  return out;
}

std::optional<Values> Replica::lookup(const std::string& table,
                                      const std::vector<std::string>& key) const {
  Impl::Call call(*impl_);
  const TableDef& def = impl_->find(table);
  std::optional<Values> out;
  impl_->store->lookup(def, key, [&](const Row& row) { out = to_values(row); });
  return out;
}

void Replica::scan(const std::string& table, const std::function<void(const Values&)>& fn) const {
  Impl::Call call(*impl_);
  const TableDef& def = impl_->find(table);
  impl_->scanning.store(std::this_thread::get_id());
  struct Done {
    const Impl& impl;
    ~Done() { impl.scanning.store(std::thread::id()); }
  } done{*impl_};
  impl_->store->scan(def, [&](const Row& row) { fn(to_values(row)); });
}

uint64_t Replica::count(const std::string& table) const {
  Impl::Call call(*impl_);
  return impl_->store->count(impl_->find(table));
}

const char* to_string(ReplicaState::Phase phase) {
  switch (phase) {
    case ReplicaState::Phase::kEmpty: return "empty";
    case ReplicaState::Phase::kCopying: return "copying";
    case ReplicaState::Phase::kStreaming: return "streaming";
  }
  return "unknown";
}

void append_csv_field(std::string& out, const Value& v, bool single_column) {
  append_csv_field(out, v ? Datum::of(*v) : Datum::null(), single_column);
}

void append_json_value(std::string& out, const Value& v) {
  append_json_value(out, v ? Datum::of(*v) : Datum::null());
}

std::vector<std::string> parse_table_list(const std::string& list) {
  std::vector<std::string> out;
  for (const auto& n : parse_name_list(list))
    out.push_back(quote_ident(n.schema) + "." + quote_ident(n.name));
  if (out.empty()) throw Error(ErrorCategory::kConfiguration, "no table named in '" + list + "'");
  return out;
}

}  // namespace pgseed
