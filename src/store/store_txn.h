// StoreTxn: a store write transaction that rolls itself back unless committed (libpqxx's
// dbtransaction model), also while an exception unwinds.
#pragma once

#include "pgseed/error.h"
#include "store/store.h"

namespace pgseed {

class StoreTxn {
 public:
  explicit StoreTxn(Store& store) : store_(store) { store_.begin(); }
  ~StoreTxn() {
    if (open_) {
      try {
        store_.rollback();
      } catch (const Error&) {
        // Already unwinding from the error that matters; the store keeps its last commit.
      }
    }
  }
  StoreTxn(const StoreTxn&) = delete;
  StoreTxn& operator=(const StoreTxn&) = delete;
  // Commits durably (Store::commit); after it the destructor does nothing. When it throws,
  // the transaction is still open (the destructor rolls it back).
  void commit() {
    store_.commit();
    open_ = false;
  }
  // Rolls back now, reporting a failure (Store::rollback's Error) instead of swallowing it
  // as the destructor does; after it the destructor does nothing.
  void rollback() {
    open_ = false;
    store_.rollback();
  }

 private:
  Store& store_;
  bool open_ = true;
};

}  // namespace pgseed
