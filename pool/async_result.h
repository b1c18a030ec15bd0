// pool::AsyncResult<R>: the result of apply_async, map_async and starmap_async, as Python's
// multiprocessing.pool.AsyncResult.
//
//   pool::AsyncResult<double> root = workers.apply_async(slow_sqrt, 2.0);
//   ... other work; the task runs meanwhile ...
//   double value = root.get();  // or root.get(std::chrono::seconds(1))
//   other.cancel();             // drops a call that has not started
//
// Contract
// - get() waits, then returns the value or rethrows what the call failed with (TaskError,
//   WorkerDied, PoolNotRunning if the pool was terminated first). It may be called repeatedly;
//   get() on an rvalue moves the value out.
// - get(timeout) throws pool::TimeoutError when the result is not ready in time; the work goes on.
// - callback(value) or error_callback(exception_ptr), given to the *_async call, runs exactly once,
//   before ready() becomes true. On a ProcessPool it runs in the thread that uses the pool, during
//   whichever pool call or wait notices the completion; on a thread pool it runs in the worker
//   thread that finished the work. A callback never changes the outcome: get(), successful() and
//   ready() report the task's value or its error whatever a callback does. A callback that throws
//   is reported on stderr in one line ("pool: the callback of an *_async call raised
//   std::runtime_error: ...; ignored ...") and otherwise ignored, as Python's concurrent.futures
//   logs and ignores a done-callback that raises; the pool and its worker threads go on.
// - cancel() drops a call no worker has started: it fails with CancelledError and returns true.
//   A call that started goes on (false), except with cancel(pool::kill_running) on a ProcessPool,
//   which kills the workers running it (they are replaced) and fails it with CancelledError. On a
//   thread pool a task that takes a std::stop_token first is asked to stop instead (its outcome is
//   its own). A call that is done is not cancelled (false, unless it was cancelled before).
// - Copies share one result. Waiting on a thread pool's result is thread-safe; a ProcessPool's
//   results are waited on by the thread that uses the pool.
#ifndef POOL_ASYNC_RESULT_H_
#define POOL_ASYNC_RESULT_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/detail/exception_text.h"
#include "pool/detail/wait_hook.h"
#include "pool/errors.h"

namespace pool {

// What AsyncResult::cancel does to a call that has started: leave it (Python's Future.cancel), or
// kill the workers running it (a ProcessPool; pebble's cancel).
enum class Cancel { if_not_started, kill_running };
inline constexpr Cancel kill_running = Cancel::kill_running;

namespace detail {

using Clock = std::chrono::steady_clock;

// Makes progress on behalf of a waiter: a ProcessPool's event loop, which only runs when someone
// waits. Thread pools have none: their threads settle results themselves.
class Driver {
 public:
  virtual ~Driver() = default;
  // Runs until done() or the deadline; true when done() held.
  virtual bool drive_until(const std::function<bool()>& done,
                           std::optional<Clock::time_point> deadline) = 0;
};

// Writes "pool: the <which> of an *_async call raised <type>: <what>; ignored ..." to stderr for
// the exception being handled. Called from a catch block; never throws, since it runs where a
// throw would replace the task's outcome or end a worker thread.
inline void report_ignored_callback_exception(const char* which) noexcept {
  try {
    const ExceptionText text = describe_exception(std::current_exception());
    const std::string line = std::string("pool: the ") + which + " of an *_async call raised " +
                             text.type + ": " + text.message +
                             "; ignored (the result keeps the task's outcome)\n";
    // One stdio call (it locks the stream), so that lines from several worker threads never mix.
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  } catch (...) {
    std::fputs("pool: a callback of an *_async call raised; ignored\n", stderr);
  }
}

inline bool is_cancellation(const std::exception_ptr& error) {
  if (!error) return false;
  try {
    std::rethrow_exception(error);
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}

// What a call dropped by AsyncResult::cancel() fails with.
inline std::exception_ptr cancelled_error() {
  return std::make_exception_ptr(CancelledError("pool: the call was cancelled"));
}

class AsyncStateBase {
 public:
  explicit AsyncStateBase(Driver* driver) : driver_(driver) {}
  virtual ~AsyncStateBase() = default;
  AsyncStateBase(const AsyncStateBase&) = delete;
  AsyncStateBase& operator=(const AsyncStateBase&) = delete;

  bool settled() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return settled_;
  }

  // True when settled by the deadline; kNoDeadline waits for ever. (A plain time_point rather
  // than an optional one: GCC 12 warns "may be used uninitialized" on the empty optional's payload
  // in every caller of get().)
  static constexpr Clock::time_point kNoDeadline = Clock::time_point::max();
  bool wait_until(Clock::time_point deadline) {
    const bool timed = deadline != kNoDeadline;
    if (Driver* driver = driver_.load(std::memory_order_acquire)) {
      if (settled()) return true;
      return driver->drive_until([this] { return settled(); },
                                 timed ? std::optional<Clock::time_point>(deadline) : std::nullopt);
    }
    std::unique_lock<std::mutex> guard(mutex_);
    while (current_wait_hook != nullptr) {
      const Clock::time_point wake = std::min(Clock::now() + kWaitHookPeriod, deadline);
      if (settled_cv_.wait_until(guard, wake, [this] { return settled_; })) return true;
      if (timed && Clock::now() >= deadline) return false;
      guard.unlock();
      run_wait_hook();
      guard.lock();
    }
    if (!timed) {
      settled_cv_.wait(guard, [this] { return settled_; });
      return true;
    }
    return settled_cv_.wait_until(guard, deadline, [this] { return settled_; });
  }

  // A non-blocking look: lets a ProcessPool notice finished work first.
  bool poll() {
    if (settled()) return true;
    if (Driver* driver = driver_.load(std::memory_order_acquire))
      driver->drive_until([this] { return settled(); }, Clock::now());
    return settled();
  }

  std::exception_ptr error() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return error_;
  }

  // Runs `listener` once the state is settled: at once when it is, else in the thread that
  // settles it, after the callbacks. It must not throw.
  void on_settled(std::function<void()> listener) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if (!settled_) {
        listeners_.push_back(std::move(listener));
        return;
      }
    }
    listener();
  }
  // The pool's event loop while unsettled (a ProcessPool), null otherwise.
  Driver* driver() const { return driver_.load(std::memory_order_acquire); }

  // How the backend drops the call: returns true when no worker will run it (or, for
  // kill_running, when it stopped those that did); the state is then failed with CancelledError.
  // It must not settle the state itself with another error. Called at most once per cancel().
  using Canceller = std::function<bool(Cancel)>;
  void set_canceller(Canceller canceller) {
    std::lock_guard<std::mutex> guard(mutex_);
    if (!settled_) canceller_ = std::move(canceller);
  }
  // A task that takes a std::stop_token: cancel() asks it to stop when the call cannot be dropped.
  void set_stop_source(std::stop_source source) {
    std::lock_guard<std::mutex> guard(mutex_);
    if (!settled_) stop_ = std::move(source);
  }

  bool cancel(Cancel how) {
    Canceller canceller;
    std::stop_source stop(std::nostopstate);
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if (settled_) return cancelled_;
      canceller = canceller_;
      stop = stop_;
      cancelling_ = true;
    }
    if (canceller && canceller(how)) {
      fail(cancelled_error());
      std::lock_guard<std::mutex> guard(mutex_);
      return cancelled_;
    }
    {
      std::lock_guard<std::mutex> guard(mutex_);
      cancelling_ = false;
    }
    stop.request_stop();  // a no-op without a stop state
    return false;
  }
  bool cancelled() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return cancelled_;
  }

  // Fails the result unless it is settled already; runs error_callback.
  void fail(std::exception_ptr error) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if (settled_) return;
    }
    run_error_callback(error);
    finish(std::move(error));
  }

 protected:
  // Runs error_callback(error) if there is one; never throws.
  virtual void run_error_callback(const std::exception_ptr& error) noexcept = 0;

  void finish(std::exception_ptr error) {
    std::vector<std::function<void()>> listeners;
    Canceller canceller;  // released outside the lock: it may own the backend's job
    {
      std::lock_guard<std::mutex> guard(mutex_);
      cancelled_ = cancelling_ && is_cancellation(error);
      error_ = std::move(error);
      settled_ = true;
      listeners.swap(listeners_);
      canceller.swap(canceller_);
    }
    driver_.store(nullptr, std::memory_order_release);
    settled_cv_.notify_all();
    for (std::function<void()>& listener : listeners) listener();
  }

  mutable std::mutex mutex_;

 private:
  std::condition_variable settled_cv_;
  bool settled_ = false;
  std::exception_ptr error_;
  std::vector<std::function<void()>> listeners_;  // until settled
  Canceller canceller_;                           // until settled
  std::stop_source stop_{std::nostopstate};
  bool cancelling_ = false;  // a cancel() is dropping the call
  bool cancelled_ = false;   // settled by cancel()
  // Atomic: a thread pool settles the state in a worker while another thread waits on it.
  std::atomic<Driver*> driver_;
};

// AsyncState<R>::Callback. A specialization for void: std::conditional_t would still form
// `const void&`, which makes AsyncResult<void> ill-formed.
template <class R>
struct SuccessCallback {
  using type = std::function<void(const R&)>;
};
template <>
struct SuccessCallback<void> {
  using type = std::function<void()>;
};

template <class R>
class AsyncState final : public AsyncStateBase {
 public:
  using Callback = typename SuccessCallback<R>::type;
  using ErrorCallback = std::function<void(std::exception_ptr)>;

  AsyncState(Driver* driver, Callback callback, ErrorCallback error_callback)
      : AsyncStateBase(driver),
        callback_(std::move(callback)),
        error_callback_(std::move(error_callback)) {}

  template <class... V>
  void succeed(V&&... value) {
    if constexpr (!std::is_void_v<R>) value_.emplace(std::forward<V>(value)...);
    if (callback_) {
      try {
        if constexpr (std::is_void_v<R>) {
          callback_();
        } else {
          callback_(*value_);
        }
      } catch (...) {
        report_ignored_callback_exception("callback");
      }
    }
    finish(nullptr);
  }

  // Valid once settled without error.
  auto& value() {
    if constexpr (!std::is_void_v<R>) return *value_;
  }

 private:
  void run_error_callback(const std::exception_ptr& error) noexcept override {
    if (!error_callback_) return;
    try {
      error_callback_(error);
    } catch (...) {
      report_ignored_callback_exception("error_callback");
    }
  }

  struct Empty {};
  std::conditional_t<std::is_void_v<R>, Empty, std::optional<R>> value_;
  Callback callback_;
  ErrorCallback error_callback_;
};

}  // namespace detail

template <class R>
class AsyncResult {
 public:
  using Callback = typename detail::AsyncState<R>::Callback;
  using ErrorCallback = typename detail::AsyncState<R>::ErrorCallback;

  explicit AsyncResult(std::shared_ptr<detail::AsyncState<R>> state) : state_(std::move(state)) {}

  // Waits for the result; rethrows the call's failure.
  R get() & {
    wait();
    rethrow();
    if constexpr (!std::is_void_v<R>) return state_->value();
  }
  R get() && {
    wait();
    rethrow();
    if constexpr (!std::is_void_v<R>) return std::move(state_->value());
  }
  // Throws pool::TimeoutError when the result is not ready within `timeout`.
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) & {
    if (!wait(timeout)) throw TimeoutError("pool: the result was not ready in time");
    return get();
  }
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) && {
    if (!wait(timeout)) throw TimeoutError("pool: the result was not ready in time");
    return std::move(*this).get();
  }

  void wait() const { state_->wait_until(detail::AsyncStateBase::kNoDeadline); }
  // True when the result is ready within `timeout`.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    const detail::Clock::time_point now = detail::Clock::now();
    // A timeout past the clock's range (hours::max()) waits for ever rather than overflowing.
    const bool forever = std::chrono::duration<double>(timeout) >=
                         std::chrono::duration<double>(detail::AsyncStateBase::kNoDeadline - now);
    return state_->wait_until(forever ? detail::AsyncStateBase::kNoDeadline
                                      : now + std::chrono::ceil<detail::Clock::duration>(timeout));
  }

  bool ready() const { return state_->poll(); }

  // concurrent.futures' names: done() is ready(), result() is get().
  bool done() const { return ready(); }
  R result() & { return get(); }
  R result() && { return std::move(*this).get(); }
  template <class Rep, class Period>
  R result(std::chrono::duration<Rep, Period> timeout) & {
    return get(timeout);
  }
  // Waits; the call's failure, or null when it succeeded. Throws pool::TimeoutError when it is not
  // ready within `timeout`.
  std::exception_ptr exception() const {
    wait();
    return state_->error();
  }
  template <class Rep, class Period>
  std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const {
    if (!wait(timeout)) throw TimeoutError("pool: the result was not ready in time");
    return state_->error();
  }
  // Runs fn(result) once the call is done: at once when it is; otherwise where callbacks run (on
  // a ProcessPool in the thread waiting on the pool, on a thread pool in the worker thread that
  // finished). A throwing fn is reported on stderr and ignored, as concurrent.futures does.
  template <class F>
  void add_done_callback(F fn) {
    state_->on_settled([state = state_, fn = std::move(fn)]() mutable noexcept {
      try {
        const AsyncResult self(std::move(state));
        fn(self);
      } catch (...) {
        detail::report_ignored_callback_exception("done callback");
      }
    });
  }

  // Drops the call if no worker started it, then true; see the contract above for the rest.
  bool cancel(Cancel how = Cancel::if_not_started) { return state_->cancel(how); }
  // Whether cancel() ended the call (its result is CancelledError).
  bool cancelled() const { return state_->cancelled(); }

  // For pool::wait and pool::as_completed (pool/futures.h).
  const std::shared_ptr<detail::AsyncState<R>>& state() const { return state_; }
  // Whether the call succeeded; std::logic_error if it is not ready yet (Python: ValueError).
  bool successful() const {
    if (!ready())
      throw std::logic_error("pool: AsyncResult::successful() before the result is ready");
    return state_->error() == nullptr;
  }

 private:
  void rethrow() const {
    if (std::exception_ptr error = state_->error()) std::rethrow_exception(error);
  }

  std::shared_ptr<detail::AsyncState<R>> state_;
};

}  // namespace pool

#endif  // POOL_ASYNC_RESULT_H_
