// BoundedQueue: a blocking multi-producer queue with a fixed capacity, so that fast
// producers (COPY readers) cannot outrun the store writer and grow memory without bound.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace pgseed {

template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}

  // Blocks while full; returns false (dropping `item`) once the queue is closed.
  bool push(T item) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }

  // Blocks while empty; nullopt once closed and drained.
  std::optional<T> pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  // No more pushes; pop() drains what is left. With `discard`, drops what is left.
  void close(bool discard = false) {
    std::lock_guard lock(mu_);
    closed_ = true;
    if (discard) items_.clear();
    not_empty_.notify_all();
    not_full_.notify_all();
  }

 private:
  size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace pgseed
