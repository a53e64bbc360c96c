// Replica: the public read API over a Store.
#include "pgseed/replica.h"

#include "api/replica_state.h"
#include "model/identifiers.h"
#include "pgseed/error.h"
#include "pgseed/sync.h"
#include "store/store.h"
#include "model/value_codec.h"

namespace pgseed {

struct Replica::Impl {
  std::unique_ptr<Store> store;

  const TableDef& find(const std::string& name, std::vector<TableDef>& holder) const {
    QualifiedName q = parse_qualified_name(name);
    holder = store->tables();
    for (const auto& t : holder)
      if (t.schema == q.schema && t.name == q.name) return t;
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

std::unique_ptr<Replica> Replica::open(const std::string& store) {
  auto impl = std::make_unique<Impl>();
  impl->store = Store::open(store, /*must_exist=*/true);
  return std::unique_ptr<Replica>(new Replica(std::move(impl)));
}

ReplicaState Replica::state() const { return to_replica_state(impl_->store->state()); }

std::vector<TableInfo> Replica::tables() const {
  std::vector<TableInfo> out;
  for (const auto& t : impl_->store->tables()) {
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
  std::vector<TableDef> holder;
  const TableDef& def = impl_->find(table, holder);
  std::optional<Values> out;
  impl_->store->lookup(def, key, [&](const Row& row) { out = to_values(row); });
  return out;
}

void Replica::scan(const std::string& table, const std::function<void(const Values&)>& fn) const {
  std::vector<TableDef> holder;
  const TableDef& def = impl_->find(table, holder);
  impl_->store->scan(def, [&](const Row& row) { fn(to_values(row)); });
}

uint64_t Replica::count(const std::string& table) const {
  std::vector<TableDef> holder;
  return impl_->store->count(impl_->find(table, holder));
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
