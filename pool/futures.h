// Waiting on several results at once, as concurrent.futures' wait() and as_completed():
//
//   std::vector<pool::AsyncResult<double>> futures;
//   for (double x : inputs) futures.push_back(workers.submit(slow_sqrt, x));
//   for (pool::AsyncResult<double> done : pool::as_completed(futures)) use(done.result());
//   auto [done, not_done] = pool::wait(futures, pool::FirstCompleted, std::chrono::seconds(1));
//
// The results must come from one pool. On a ProcessPool the waiting thread runs the pool's event
// loop (the thread that uses the pool, as for get()); on thread pools it sleeps until a worker
// thread settles one of them.
#ifndef POOL_FUTURES_H_
#define POOL_FUTURES_H_

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ratio>
#include <utility>
#include <vector>

#include "pool/async_result.h"
#include "pool/errors.h"

namespace pool {

enum class ReturnWhen { kFirstCompleted, kFirstException, kAllCompleted };
inline constexpr ReturnWhen FirstCompleted = ReturnWhen::kFirstCompleted;
inline constexpr ReturnWhen FirstException = ReturnWhen::kFirstException;
inline constexpr ReturnWhen AllCompleted = ReturnWhen::kAllCompleted;

template <class R>
struct WaitResult {
  std::vector<AsyncResult<R>> done;
  std::vector<AsyncResult<R>> not_done;
};

namespace detail {

// The indices of the results settled so far, in the order they settled: fed by one listener per
// result, waited on by the thread that waits for them.
class SettledQueue {
 public:
  template <class R>
  static std::shared_ptr<SettledQueue> watch(const std::vector<AsyncResult<R>>& results) {
    auto queue = std::make_shared<SettledQueue>();
    for (std::size_t i = 0; i < results.size(); ++i) {
      // Settled results have dropped theirs.
      if (queue->driver_ == nullptr) queue->driver_ = results[i].state()->driver();
      results[i].state()->on_settled([queue, i]() noexcept { queue->push(i); });
    }
    return queue;
  }

  // Waits until at least `count` results have settled, or the deadline; true when they have.
  bool wait_for(std::size_t count, Clock::time_point deadline) {
    const bool timed = deadline != AsyncStateBase::kNoDeadline;
    if (Driver* driver = driver_) {
      // A ProcessPool settles results only while someone drives its loop.
      return driver->drive_until([this, count] { return settled() >= count; },
                                 timed ? std::optional<Clock::time_point>(deadline) : std::nullopt);
    }
    std::unique_lock<std::mutex> guard(mutex_);
    const auto enough = [this, count] { return order_.size() >= count; };
    if (!timed) {
      changed_.wait(guard, enough);
      return true;
    }
    return changed_.wait_until(guard, deadline, enough);
  }
  std::size_t settled() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return order_.size();
  }
  // The index of the n-th result that settled (n < settled()).
  std::size_t at(std::size_t n) const {
    std::lock_guard<std::mutex> guard(mutex_);
    return order_[n];
  }

 private:
  void push(std::size_t index) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      order_.push_back(index);
    }
    changed_.notify_all();
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::size_t> order_;
  Driver* driver_ = nullptr;  // the pool's loop, when the results are a ProcessPool's
};

template <class Rep, class Period>
Clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout) {
  // A timeout past the clock's range (hours::max()) waits for ever rather than overflowing.
  const Clock::time_point now = Clock::now();
  if (std::chrono::duration<double>(timeout) >=
      std::chrono::duration<double>(AsyncStateBase::kNoDeadline - now)) {
    return AsyncStateBase::kNoDeadline;
  }
  return now + std::chrono::ceil<Clock::duration>(timeout);
}

template <class R>
WaitResult<R> wait_until(const std::vector<AsyncResult<R>>& futures, ReturnWhen when,
                         Clock::time_point deadline) {
  const auto queue = SettledQueue::watch(futures);
  std::size_t seen = 0;
  for (;;) {
    const std::size_t target = when == AllCompleted ? futures.size() : seen + 1;
    if (futures.empty() || !queue->wait_for(std::min(target, futures.size()), deadline)) break;
    if (when == FirstCompleted || queue->settled() == futures.size()) break;
    bool failed = false;
    for (const std::size_t settled = queue->settled(); seen < settled; ++seen) {
      failed = failed || futures[queue->at(seen)].state()->error() != nullptr;
    }
    if (when == FirstException && failed) break;
  }
  WaitResult<R> split;
  for (const AsyncResult<R>& future : futures) {
    (future.state()->settled() ? split.done : split.not_done).push_back(future);
  }
  return split;
}

}  // namespace detail

// Waits until `when` holds for `futures` or the timeout passes; returns them split into done and
// not done (in the given order), as concurrent.futures.wait. FirstException returns when one
// failed, or when all are done.
template <class R>
WaitResult<R> wait(const std::vector<AsyncResult<R>>& futures, ReturnWhen when = AllCompleted) {
  return detail::wait_until(futures, when, detail::AsyncStateBase::kNoDeadline);
}
template <class R, class Rep, class Period>
WaitResult<R> wait(const std::vector<AsyncResult<R>>& futures, ReturnWhen when,
                   std::chrono::duration<Rep, Period> timeout) {
  return detail::wait_until(futures, when, detail::deadline_after(timeout));
}

// The futures in the order they finish, as concurrent.futures.as_completed; the iteration throws
// pool::TimeoutError when the next one is not done within the timeout (counted from this call).
template <class R>
class AsCompleted {
 public:
  AsCompleted(std::vector<AsyncResult<R>> futures, detail::Clock::time_point deadline)
      : futures_(std::move(futures)),
        queue_(detail::SettledQueue::watch(futures_)),
        deadline_(deadline) {}

  class iterator {
   public:
    using value_type = AsyncResult<R>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(AsCompleted* owner, std::size_t n) : owner_(owner), n_(n) { settle(); }
    const AsyncResult<R>& operator*() const { return owner_->futures_[owner_->queue_->at(n_)]; }
    iterator& operator++() {
      ++n_;
      settle();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(const iterator& other) const { return n_ == other.n_; }

   private:
    void settle() {
      if (owner_ == nullptr || n_ >= owner_->futures_.size()) return;
      if (!owner_->queue_->wait_for(n_ + 1, owner_->deadline_)) {
        throw TimeoutError("pool: as_completed: not every result was done in time");
      }
    }
    AsCompleted* owner_ = nullptr;
    std::size_t n_ = 0;
  };

  iterator begin() { return iterator(this, 0); }
  iterator end() { return iterator(nullptr, futures_.size()); }

 private:
  std::vector<AsyncResult<R>> futures_;
  std::shared_ptr<detail::SettledQueue> queue_;
  detail::Clock::time_point deadline_;
};

template <class R>
AsCompleted<R> as_completed(std::vector<AsyncResult<R>> futures) {
  return AsCompleted<R>(std::move(futures), detail::AsyncStateBase::kNoDeadline);
}
template <class R, class Rep, class Period>
AsCompleted<R> as_completed(std::vector<AsyncResult<R>> futures,
                            std::chrono::duration<Rep, Period> timeout) {
  return AsCompleted<R>(std::move(futures), detail::deadline_after(timeout));
}

}  // namespace pool

#endif  // POOL_FUTURES_H_
