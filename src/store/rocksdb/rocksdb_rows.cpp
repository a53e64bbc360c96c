// RocksDbStore: rows: the copy and apply writes, scans, lookups and counts.
#include "store/rocksdb/rocksdb_store_impl.h"

#include "common/bytes.h"
#include "pgseed/error.h"
#include "store/key_codec.h"
#include "store/row_codec.h"

namespace pgseed::rocks {

void RocksDbStore::insert_batch(const TableDef& def, const RowBatch& rows) {
  require_txn("insert_batch");
  insert_encoded(def, rows, encode_batch(entry_ptr(def), rows));
}

Store::RowEncoder RocksDbStore::row_encoder(const TableDef& def) {
  return [t = entry_ptr(def)](const RowBatch& rows) -> std::unique_ptr<EncodedRows> {
    return encode_batch(t, rows);
  };
}

std::unique_ptr<EncodedBatch> RocksDbStore::encode_batch(TablePtr t, const RowBatch& rows) {
  auto out = std::make_unique<EncodedBatch>();
  out->bytes.reserve(rows.text_bytes() + rows.rows() * (16 + 5 * size_t(t->slot_count)));
  out->sizes.reserve(rows.rows());
  Row row;
  for (size_t i = 0; i < rows.rows(); ++i) {
    rows.row(i, row);
    check_row(*t, row, "insert_batch");
    size_t start = out->bytes.size();
    t->codec.append_encoded(out->bytes, row);
    size_t key_end = out->bytes.size();
    append_row(out->bytes, *t, row);
    out->sizes.emplace_back(uint32_t(key_end - start), uint32_t(out->bytes.size() - key_end));
  }
  out->table = std::move(t);
  return out;
}

void RocksDbStore::insert_encoded(const TableDef& def, const RowBatch& rows,
                                  std::unique_ptr<EncodedRows> encoded) {
  require_txn("insert_batch");
  const TablePtr& table = entry_ptr(def);
  auto* e = dynamic_cast<EncodedBatch*>(encoded.get());
  if (!e || e->table != table) {  // encoded in a layout the table no longer has
    encoded = encode_batch(table, rows);
    e = static_cast<EncodedBatch*>(encoded.get());
  }
  const TableEntry& t = *table;
  if (bulk_) return bulk_insert(t, *e);
  // Copy batches are not indexed for reads inside the transaction: the copy does not
  // read, and the index would double its memory. A later read rebuilds it.
  const bool index = !copy_txn() || spilled_;
  if (!index) overlay_stale_ = true;
  std::string_view bytes = e->bytes;
  std::string key;
  for (auto [key_size, value_size] : e->sizes) {
    key.assign(bytes.substr(0, key_size));
    append_row_seq(t, key);
    put(key, bytes.substr(key_size, value_size), index);
    bytes.remove_prefix(key_size + value_size);
  }
  // The initial copy is not one atomic write (the phase stays kCopying until a durable
  // commit ends it, and a crash before that discards the copy), so its rows go to the
  // database as they come instead of piling up in memory until commit().
  if (!index && batch_.GetDataSize() > kCopyFlushBytes) {
    rocksdb::WriteOptions wo;
    wo.disableWAL = true;
    read_it_.it.reset();
    rocksdb::Status s = db_->Write(wo, &batch_);
    if (!s.ok()) fail(s, "writing copied rows");
    unflushed_copy_ = true;
    batch_.Clear();
  }
}

void RocksDbStore::upsert(const TableDef& def, std::span<const Datum> row) {
  require_txn("upsert");
  require_no_bulk("upsert");
  const TableEntry& t = entry(def);
  check_row(t, row, "upsert");
  if (has_unchanged(row)) return update(def, {}, row);
  put(row_key(t, row), encode_row(t, row));
}

void RocksDbStore::update(const TableDef& def, std::span<const Datum> old_row,
            std::span<const Datum> new_row) {
  require_txn("update");
  require_no_bulk("update");
  const TableEntry& t = entry(def);
  check_row(t, new_row, "update");
  if (!old_row.empty()) check_row(t, old_row, "update (old row)");
  Row merged(new_row.begin(), new_row.end());
  RowBuffers buf;
  Row stored;
  std::string stored_value;

  if (t.codec.keyed()) {
    std::string old_key = t.codec.encode(old_row.empty() ? new_row : old_row);
    if (has_unchanged(new_row)) {
      std::optional<std::string> v = get(old_key);
      if (!v)
        throw Error(ErrorCategory::kStore,
                    "table " + t.def.qualified() +
                        ": an update keeps unchanged TOAST values of a row the store does "
                        "not have; the replica has diverged from the source, sync it again");
      stored_value = std::move(*v);
      decode_row(t, stored_value, buf, stored);
      merge_unchanged(merged, stored);
    }
    std::string new_key = t.codec.encode(merged);
    if (new_key != old_key) del(old_key);
    put(new_key, encode_row(t, merged));
    return;
  }

  // No key: the old row is the whole row (REPLICA IDENTITY FULL); change one equal row.
  if (old_row.empty())
    throw Error(ErrorCategory::kInternal,
                "update of " + t.def.qualified() + " (no key) without the old row");
  merge_unchanged(merged, old_row);
  std::optional<std::string> found = find_equal(t, old_row);
  std::string new_key = t.codec.encode(merged);
  if (found) {
    new_key.append(*found, found->size() - 8, 8);  // keep its sequence number
    if (new_key != *found) del(*found);
  } else {
    append_be(new_key, pending_.next_row_seq++, 8);
  }
  put(new_key, encode_row(t, merged));
}

void RocksDbStore::remove(const TableDef& def, std::span<const Datum> old_row) {
  require_txn("remove");
  require_no_bulk("remove");
  const TableEntry& t = entry(def);
  check_row(t, old_row, "remove");
  if (t.codec.keyed()) {
    del(t.codec.encode(old_row));
    return;
  }
  if (std::optional<std::string> found = find_equal(t, old_row)) del(*found);
}

void RocksDbStore::truncate(const TableDef& def) {
  require_txn("truncate");
  require_no_bulk("truncate");
  entry(def);
  del_range(table_begin(def.id), table_end(def.id));
}

void RocksDbStore::scan(const TableDef& def, const std::function<void(const Row&)>& fn) const {
  const TableEntry& t = entry(def);
  RowBuffers buf;
  Row row;
  for_each(table_begin(def.id), table_end(def.id), [&](std::string_view, std::string_view v) {
    decode_row(t, v, buf, row);
    fn(row);
    return true;
  });
}

bool RocksDbStore::lookup(const TableDef& def, std::span<const std::string> key,
            const std::function<void(const Row&)>& fn) const {
  const TableEntry& t = entry(def);
  if (!t.codec.keyed() || key.size() != t.codec.columns().size())
    return Store::lookup(def, key, fn);  // reports the mismatch
  std::optional<std::string> v = get(key_of(t, key));
  if (!v) return false;
  RowBuffers buf;
  Row row;
  decode_row(t, *v, buf, row);
  fn(row);
  return true;
}

uint64_t RocksDbStore::count(const TableDef& def) const {
  entry(def);
  uint64_t n = 0;
  for_each(table_begin(def.id), table_end(def.id), [&](std::string_view, std::string_view) {
    ++n;
    return true;
  });
  return n;
}

void RocksDbStore::check_row(const TableEntry& t, std::span<const Datum> row, const char* op) {
  if (row.size() != t.def.columns.size())
    throw Error(ErrorCategory::kInternal, std::string(op) + " on " + t.def.qualified() +
                                              ": row has " + std::to_string(row.size()) +
                                              " values for " +
                                              std::to_string(t.def.columns.size()) + " columns");
}

bool RocksDbStore::has_unchanged(std::span<const Datum> row) {
  return std::any_of(row.begin(), row.end(),
                     [](const Datum& d) { return d.kind == Datum::Kind::kUnchanged; });
}

void RocksDbStore::merge_unchanged(Row& merged, std::span<const Datum> from) {
  for (size_t i = 0; i < merged.size(); ++i)
    if (merged[i].kind == Datum::Kind::kUnchanged) merged[i] = from[i];
}

std::string RocksDbStore::row_key(const TableEntry& t, std::span<const Datum> row) {
  std::string key = t.codec.encode(row);
  append_row_seq(t, key);
  return key;
}

void RocksDbStore::append_row_seq(const TableEntry& t, std::string& key) {
  if (!t.codec.keyed()) append_be(key, pending_.next_row_seq++, 8);
}

std::string RocksDbStore::encode_row(const TableEntry& t, std::span<const Datum> row) {
  std::string out;
  size_t text = 0;  // the encoding is the texts plus a few bytes per cell: one allocation
  for (const auto& d : row) text += d.text.size();
  out.reserve(text + 5 * size_t(t.slot_count) + 8);
  append_row(out, t, row);
  return out;
}

void RocksDbStore::append_row(std::string& out, const TableEntry& t, std::span<const Datum> row) {
  RowCodec::append_count(out, t.slot_count);
  for (uint32_t s = 0; s < t.slot_count; ++s) {
    int c = t.column_of_slot[s];
    if (c < 0)
      RowCodec::append_null(out);
    else
      RowCodec::append_cell(out, t.def.columns[c], row[c]);
  }
}

bool RocksDbStore::same_key(const TableEntry& old, const TableDef& to) {
  KeyCodec codec(to);
  if (!old.codec.keyed() || !codec.keyed() || codec.encodings() != old.codec.encodings())
    return false;
  for (size_t k = 0; k < codec.columns().size(); ++k)
    if (to.columns[codec.columns()[k]].name != old.def.columns[old.codec.columns()[k]].name)
      return false;
  return true;
}

std::optional<std::string> RocksDbStore::find_equal(const TableEntry& t, std::span<const Datum> row) const {
  std::string prefix = t.codec.encode(row);
  std::optional<std::string> found;
  for_each(prefix, prefix_end(prefix), [&](std::string_view key, std::string_view) {
    // The encoding is prefix-free, so any key here is this row plus a sequence number.
    if (key.size() == prefix.size() + 8) {
      found = std::string(key);
      return false;
    }
    return true;
  });
  return found;
}

}  // namespace pgseed::rocks
