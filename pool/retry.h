// pool::retrying(f, times[, pool::RetryOn::errors]): a call whose lost work is run again.
//
//   // Chunks lost with a worker (a signal, an exit, the OOM killer, task_timeout) run again on a
//   // live worker, up to 3 times, before the call fails with WorkerDied saying how many attempts
//   // were made:
//   auto results = workers.map(pool::retrying(simulate, 3), inputs);
//   // Also a task that throws is called again on its item, up to 3 times:
//   auto more = workers.map(pool::retrying(fetch, 3, pool::RetryOn::errors), urls);
//
// Retried work gives what a run without failures gives: a lost chunk runs again whole (same
// items, same result slots; map_reduce folds the same chunks in the same order), and an item whose
// task threw is called again on the same item. A task that throws is not retried unless asked
// (RetryOn::errors): a TaskError is usually a bug, not bad luck. Workers are lost and replaced only
// on a ProcessPool (ProcessPoolOptions::retries sets its default for every call); a thread pool
// cannot lose a thread, and MpiPool cannot replace a lost rank (see README, "When things go
// wrong"), so there retrying(f, n) retries errors only when asked.
#ifndef POOL_RETRY_H_
#define POOL_RETRY_H_

#include <functional>
#include <type_traits>
#include <utility>

namespace pool {

enum class RetryOn {
  lost_workers,  // chunks lost with a dead worker
  errors,        // those, and a task that throws (called again on its item)
};

namespace detail {

// f with its retry policy; calls f again on the same item when it throws and errors are retried.
template <class F>
struct Retrying {
  F function;
  int times = 0;
  RetryOn on = RetryOn::lost_workers;

  // Attempts before the last get copies of rvalue arguments (apply's own copies): the last one
  // may then consume the originals.
  template <class... A>
  auto operator()(A&&... args) -> std::invoke_result_t<F&, A...> {
    if (on == RetryOn::errors) {
      for (int attempt = 0; attempt < times; ++attempt) {
        try {
          return std::invoke(function, again(std::forward<A>(args))...);
        } catch (...) {
        }
      }
    }
    return std::invoke(function, std::forward<A>(args)...);
  }

  template <class Archive>
  void serialize(Archive& archive) {
    archive(function, times, on);
  }

 private:
  template <class A>
  static decltype(auto) again(A&& arg) {
    if constexpr (std::is_lvalue_reference_v<A>) {
      return std::forward<A>(arg);
    } else {
      return std::decay_t<A>(arg);
    }
  }
};

template <class F>
struct IsRetrying : std::false_type {};
template <class F>
struct IsRetrying<Retrying<F>> : std::true_type {};

// How many times a call of f retries lost chunks: its own count, or -1 for the pool's default.
template <class F>
int retries_of(const F& f) {
  if constexpr (IsRetrying<std::decay_t<F>>::value) {
    return f.times;
  } else {
    return -1;
  }
}

}  // namespace detail

// f, whose lost chunks (and with RetryOn::errors, whose throwing items) are run again up to
// `times` times. Copies f; it travels like f.
template <class F>
detail::Retrying<std::decay_t<F>> retrying(F&& f, int times, RetryOn on = RetryOn::lost_workers) {
  return {std::forward<F>(f), times < 0 ? 0 : times, on};
}

}  // namespace pool

#endif  // POOL_RETRY_H_
