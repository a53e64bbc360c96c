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
  // Commits durably (Store::commit); after it the destructor does nothing.
  void commit() {
    store_.commit();
    open_ = false;
  }

 private:
  Store& store_;
  bool open_ = true;
};

}  // namespace pgseed
