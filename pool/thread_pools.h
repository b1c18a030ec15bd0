// Thread pools with ProcessPool's API (Python's multiprocessing.Pool), for showing why Python needs
// processes.
//
// - GilThreadPool: threads that share one global interpreter-like lock, as CPython's threads
//   share the GIL. Task code and callbacks run only while holding it, so CPU-bound tasks never
//   overlap and the total time stays serial; the lock changes hands at pool::gil::checkpoint()
//   (every item boundary is one) after the switch interval (default 5 ms, like
//   sys.setswitchinterval), and is released by pool::gil::sleep_for, by pool::gil::Released and
//   while a thread waits for work, so sleeping tasks do overlap.
// - FreeThreadPool: plain threads, no global lock (free-threaded Python 3.13t).
//
//   pool::FreeThreadPool workers(4);
//   std::vector<double> roots = workers.map(slow_sqrt, pool::range(0, 1000));
//   pool::AsyncResult<double> one = workers.apply_async(slow_sqrt, 2.0);
//   for (double root : workers.imap(slow_sqrt, std::views::iota(0, 1000))) print(root);
//
// Contract
// - Tasks share the caller's memory: f and the items need not be serializable, and f must be
//   safe to call from several threads at once. Blocking calls (map, starmap, apply, map_reduce)
//   use f and the inputs in place; the others copy f, and the *_async calls copy the items (a
//   pool::range as its bounds), so that both may go away once the call returned.
// - Calls run concurrently: each is a job in one FIFO queue, and an idle thread takes the next
//   chunk of the oldest job that has chunks left. Callbacks run in the thread that finished the
//   call's last chunk.
// - A task that throws makes the call fail with TaskError for the lowest failing index (index 0
//   for apply); the rest of that call is cancelled and the pool stays usable.
// - A map whose sizes cannot exist throws std::length_error, one whose results exceed memory and
//   swap (or the memory cgroup's limit) pool::OutOfMemory, both before anything is submitted.
// - Threads start in the constructor. The destructor is close() + join(): every call already
//   submitted completes first. Start thread pools after any ProcessPool, or destroy them first:
//   a ProcessPool refuses to fork while threads run.
// - A pool's calls are made from one thread at a time; its AsyncResults may be waited on from any
//   thread. A ResultStream must not outlive its pool.
#ifndef POOL_THREAD_POOLS_H_
#define POOL_THREAD_POOLS_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/args.h"
#include "pool/async_result.h"
#include "pool/detail/call_adapters.h"
#include "pool/detail/progress_calls.h"
#include "pool/detail/thread_map.h"
#include "pool/detail/thread_pool_core.h"
#include "pool/detail/thread_stream.h"
#include "pool/gil.h"
#include "pool/range.h"
#include "pool/result_stream.h"
#include "pool/trace.h"

namespace pool {

struct ThreadPoolOptions {
  // Runs once in each thread before its first task (Python's initializer; capture initargs in a
  // lambda). If it throws, the constructor joins the threads and throws InitializerError.
  std::function<void()> initializer;
  // Draw a progress bar on stderr for every map, starmap, imap and map_reduce, as ProcessPool.
  bool progress = false;
  // Record a timeline of every thread into this trace (see pool/trace.h); it is complete once the
  // pool stopped its threads. Null: nothing is recorded.
  std::shared_ptr<Trace> trace;
};

// The calls GilThreadPool and FreeThreadPool share. R is the task's result type (decayed).
class ThreadPoolBase {
 public:
  int size() const { return core_->size(); }

  // f(item) for every item, in input order. inputs is any sized range (vector, array, list,
  // pool::range, a sized view); chunksize 0 means Python's default, ceil(len / (4 * size())).
  // Throws TaskError for the lowest failing index, PoolNotRunning after close() or terminate().
  template <class F, class Inputs>
  std::vector<detail::ItemResult<F, const Inputs>> map(F&& f, const Inputs& inputs,
                                                       std::size_t chunksize = 0);

  // map that returns at once. callback(results) or error_callback(failure) runs once, in a pool
  // thread, before the result is ready.
  template <class F, class Inputs>
  AsyncResult<std::vector<detail::ItemResult<F, const Inputs>>> map_async(
      F&& f, const Inputs& inputs, std::size_t chunksize = 0,
      typename AsyncResult<std::vector<detail::ItemResult<F, const Inputs>>>::Callback callback =
          {},
      typename AsyncResult<std::vector<detail::ItemResult<F, const Inputs>>>::ErrorCallback
          error_callback = {});

  // f(item) for every item of any input range, sized or not (a std::views pipeline, a list), as
  // a stream of results in input order; each result is yielded as soon as it and all before it
  // are ready. An rvalue range is moved into the stream, an lvalue one is used in place and must
  // outlive it. The input is consumed in batches (about a thousand items, or 8 chunks per thread)
  // at most two ahead of the reader, so neither all inputs nor all results are held. A failing
  // task's TaskError is thrown when the stream reaches its index, after every earlier result.
  // Destroying the stream early cancels the chunks not started and waits for the running ones.
  // chunksize 0 means map's default for a sized input, 1 otherwise.
  template <class F, class Inputs>
  ResultStream<detail::ItemResult<F, std::remove_reference_t<Inputs>>> imap(
      F&& f, Inputs&& inputs, std::size_t chunksize = 1);

  // imap yielding (input index, result) pairs in the order the chunks finish.
  template <class F, class Inputs>
  ResultStream<std::pair<std::size_t, detail::ItemResult<F, std::remove_reference_t<Inputs>>>>
  imap_unordered(F&& f, Inputs&& inputs, std::size_t chunksize = 1);

  // f(a, b, ...) for every tuple-like item (std::tuple, std::pair, std::array) holding a, b, ...;
  // a void f gives detail::Unit results. Otherwise as map.
  template <class F, class Tuples>
  std::vector<detail::StarItemResult<F, const Tuples>> starmap(F&& f, const Tuples& inputs,
                                                               std::size_t chunksize = 0);

  // starmap that returns at once; callbacks as map_async.
  template <class F, class Tuples>
  AsyncResult<std::vector<detail::StarItemResult<F, const Tuples>>> starmap_async(
      F&& f, const Tuples& inputs, std::size_t chunksize = 0,
      typename AsyncResult<std::vector<detail::StarItemResult<F, const Tuples>>>::Callback
          callback = {},
      typename AsyncResult<std::vector<detail::StarItemResult<F, const Tuples>>>::ErrorCallback
          error_callback = {});

  // f(args...) in a pool thread; R may be void. f gets the pool's copies of args, as rvalues.
  // Throws TaskError (task_index 0) if f throws.
  template <class F, class... A>
  detail::CallResult<F, A...> apply(F&& f, A&&... args);

  // apply that returns at once. (clang-format 14 would run the requires-clause into the line.)
  // clang-format off
  template <class F, class... A>
    requires detail::NotArgsFirst<A...>
  AsyncResult<detail::CallResult<F, A...>> apply_async(F&& f, A&&... args);
  // clang-format on

  // apply_async(f, pool::args(a, b), callback[, error_callback]), as Python's
  // apply_async(f, args=(a, b), callback=..., error_callback=...).
  template <class F, class... T>
  AsyncResult<detail::CallResult<F, T...>> apply_async(
      F&& f, Args<T...> args,
      typename AsyncResult<detail::CallResult<F, T...>>::Callback callback = {},
      typename AsyncResult<detail::CallResult<F, T...>>::ErrorCallback error_callback = {});

  // Folds f over inputs without holding all results: each chunk folds its items' results with
  // op(T, R) -> T starting from init, then the chunks' partials are combined in chunk order with
  // op(T, T) -> T, starting from init. init must be op's identity and op associative; the result
  // then equals folding f(x) over the inputs in input order. Long or unsized inputs are consumed
  // in batches as imap does (a pool::range is never materialized). inputs must be iterable
  // through a const reference; chunksize 0 means map's default when the input is sized, 1
  // otherwise. op runs in pool threads and in the caller. Throws as map.
  template <class F, class Inputs, class Op, class T>
  T map_reduce(F&& f, const Inputs& inputs, Op op, T init, std::size_t chunksize = 0);

  // No more calls: later ones throw PoolNotRunning. Submitted work and open streams go on.
  void close() { core_->close(); }
  // Waits for every submitted call (streams still being read submit the rest of their input, so
  // their results can be read afterwards), then stops the threads. std::logic_error unless
  // close() or terminate() came first (Python: ValueError). Call it from the thread that uses
  // the pool and its streams.
  void join() { core_->join(); }
  // Stops now: work not yet started is dropped (its AsyncResults and streams fail with
  // PoolNotRunning; error callbacks run in this thread), running chunks finish (threads cannot be
  // killed), then the threads stop. Later calls throw PoolNotRunning.
  void terminate() { core_->terminate(); }

 protected:
  ThreadPoolBase(std::unique_ptr<detail::ThreadPoolCore> core, bool progress)
      : core_(std::move(core)), progress_(progress) {}
  ~ThreadPoolBase() = default;  // the core's destructor is close() + join()
  ThreadPoolBase(const ThreadPoolBase&) = delete;
  ThreadPoolBase& operator=(const ThreadPoolBase&) = delete;

  detail::ThreadPoolCore& core() const { return *core_; }

 private:
  // map and starmap: f used in place, counted when the pool draws progress.
  template <class R, class F, class Inputs>
  std::vector<R> blocking_map(F& f, const Inputs& inputs, std::size_t chunksize) {
    if (!progress_) return detail::thread_map<R>(*core_, f, inputs, chunksize);
    return detail::run_with_progress(
        detail::progress_total(inputs), "map", [&](const auto& session) {
          auto function = session.template counted<F&>(f);  // f used in place
          return detail::thread_map<R>(*core_, function, inputs, chunksize);
        });
  }

  template <class Out, bool kOrdered, class F, class Inputs>
  ResultStream<Out> stream(const char* description, F&& f, Inputs&& inputs, std::size_t chunksize) {
    if (!progress_) {
      return detail::thread_imap<Out, kOrdered>(*core_, std::forward<F>(f),
                                                std::forward<Inputs>(inputs), chunksize);
    }
    return detail::stream_with_progress(
        detail::progress_total(inputs), description, [&](const auto& session) {
          return detail::thread_imap<Out, kOrdered>(
              *core_, session.counted(std::decay_t<F>(std::forward<F>(f))),
              std::forward<Inputs>(inputs), chunksize);
        });
  }

  std::unique_ptr<detail::ThreadPoolCore> core_;
  bool progress_;
};

class GilThreadPool : public ThreadPoolBase {
 public:
  static constexpr std::chrono::milliseconds kDefaultSwitchInterval{5};

  GilThreadPool();  // one thread per available CPU
  // Throws std::invalid_argument if ncores < 1, InitializerError if the initializer throws.
  explicit GilThreadPool(int ncores,
                         std::chrono::nanoseconds switch_interval = kDefaultSwitchInterval,
                         ThreadPoolOptions options = {});

  void set_switch_interval(std::chrono::nanoseconds interval);
  std::chrono::nanoseconds switch_interval() const;
};

class FreeThreadPool : public ThreadPoolBase {
 public:
  FreeThreadPool();  // one thread per available CPU
  // Throws std::invalid_argument if ncores < 1, InitializerError if the initializer throws.
  explicit FreeThreadPool(int ncores, ThreadPoolOptions options = {});
};

// Implementation.

template <class F, class Inputs>
std::vector<detail::ItemResult<F, const Inputs>> ThreadPoolBase::map(F&& f, const Inputs& inputs,
                                                                     std::size_t chunksize) {
  using R = detail::ItemResult<F, const Inputs>;
  if constexpr (detail::check_map<F, Inputs>()) {
    return blocking_map<R>(f, inputs, chunksize);
  } else {
    return {};
  }
}

template <class F, class Inputs>
AsyncResult<std::vector<detail::ItemResult<F, const Inputs>>> ThreadPoolBase::map_async(
    F&& f, const Inputs& inputs, std::size_t chunksize,
    typename AsyncResult<std::vector<detail::ItemResult<F, const Inputs>>>::Callback callback,
    typename AsyncResult<std::vector<detail::ItemResult<F, const Inputs>>>::ErrorCallback
        error_callback) {
  using R = detail::ItemResult<F, const Inputs>;
  if constexpr (detail::check_map<F, Inputs>()) {
    return detail::thread_map_async<R>(*core_, std::forward<F>(f), inputs, chunksize,
                                       std::move(callback), std::move(error_callback));
  } else {
    return AsyncResult<std::vector<R>>(nullptr);
  }
}

template <class F, class Inputs>
ResultStream<detail::ItemResult<F, std::remove_reference_t<Inputs>>> ThreadPoolBase::imap(
    F&& f, Inputs&& inputs, std::size_t chunksize) {
  using R = detail::ItemResult<F, std::remove_reference_t<Inputs>>;
  if constexpr (detail::check_imap<F, Inputs>()) {
    return stream<R, true>("imap", std::forward<F>(f), std::forward<Inputs>(inputs), chunksize);
  } else {
    return ResultStream<R>(nullptr);
  }
}

template <class F, class Inputs>
ResultStream<std::pair<std::size_t, detail::ItemResult<F, std::remove_reference_t<Inputs>>>>
ThreadPoolBase::imap_unordered(F&& f, Inputs&& inputs, std::size_t chunksize) {
  using Indexed = std::pair<std::size_t, detail::ItemResult<F, std::remove_reference_t<Inputs>>>;
  if constexpr (detail::check_imap<F, Inputs>()) {
    return stream<Indexed, false>("imap_unordered", std::forward<F>(f),
                                  std::forward<Inputs>(inputs), chunksize);
  } else {
    return ResultStream<Indexed>(nullptr);
  }
}

template <class F, class Tuples>
std::vector<detail::StarItemResult<F, const Tuples>> ThreadPoolBase::starmap(
    F&& f, const Tuples& inputs, std::size_t chunksize) {
  using R = detail::StarItemResult<F, const Tuples>;
  if constexpr (detail::check_starmap<F, Tuples>()) {
    detail::Starred<std::remove_reference_t<F>&> starred{f};  // f used in place, as map does
    return blocking_map<R>(starred, inputs, chunksize);
  } else {
    return {};
  }
}

template <class F, class Tuples>
AsyncResult<std::vector<detail::StarItemResult<F, const Tuples>>> ThreadPoolBase::starmap_async(
    F&& f, const Tuples& inputs, std::size_t chunksize,
    typename AsyncResult<std::vector<detail::StarItemResult<F, const Tuples>>>::Callback callback,
    typename AsyncResult<std::vector<detail::StarItemResult<F, const Tuples>>>::ErrorCallback
        error_callback) {
  using R = detail::StarItemResult<F, const Tuples>;
  if constexpr (detail::check_starmap<F, Tuples>()) {
    return detail::thread_map_async<R>(*core_, detail::starred(std::forward<F>(f)), inputs,
                                       chunksize, std::move(callback), std::move(error_callback));
  } else {
    return AsyncResult<std::vector<R>>(nullptr);
  }
}

template <class F, class... A>
detail::CallResult<F, A...> ThreadPoolBase::apply(F&& f, A&&... args) {
  using R = detail::CallResult<F, A...>;
  if constexpr (detail::check_apply<F, A...>()) {
    return detail::thread_apply_async<R, std::remove_reference_t<F>&>(
               *core_, f, std::tuple<std::decay_t<A>...>(std::forward<A>(args)...), nullptr,
               nullptr)
        .get();
  } else {
    return R();
  }
}

// clang-format off
template <class F, class... A>
  requires detail::NotArgsFirst<A...>
AsyncResult<detail::CallResult<F, A...>> ThreadPoolBase::apply_async(F&& f, A&&... args) {
  // clang-format on
  using R = detail::CallResult<F, A...>;
  if constexpr (detail::check_apply<F, A...>()) {
    return detail::thread_apply_async<R, std::decay_t<F>>(
        *core_, std::forward<F>(f), std::tuple<std::decay_t<A>...>(std::forward<A>(args)...),
        nullptr, nullptr);
  } else {
    return AsyncResult<R>(nullptr);
  }
}

template <class F, class... T>
AsyncResult<detail::CallResult<F, T...>> ThreadPoolBase::apply_async(
    F&& f, Args<T...> args, typename AsyncResult<detail::CallResult<F, T...>>::Callback callback,
    typename AsyncResult<detail::CallResult<F, T...>>::ErrorCallback error_callback) {
  using R = detail::CallResult<F, T...>;
  if constexpr (detail::check_apply<F, T...>()) {
    return detail::thread_apply_async<R, std::decay_t<F>>(
        *core_, std::forward<F>(f), std::move(args.values), std::move(callback),
        std::move(error_callback));
  } else {
    return AsyncResult<R>(nullptr);
  }
}

template <class F, class Inputs, class Op, class T>
T ThreadPoolBase::map_reduce(F&& f, const Inputs& inputs, Op op, T init, std::size_t chunksize) {
  if constexpr (detail::check_map_reduce<F, Inputs, Op, T>()) {
    if (!progress_) {
      return detail::thread_map_reduce(*core_, f, inputs, op, std::move(init), chunksize);
    }
    return detail::run_with_progress(
        detail::progress_total(inputs), "map_reduce", [&](const auto& session) {
          auto function = session.template counted<std::remove_reference_t<F>&>(f);
          return detail::thread_map_reduce(*core_, function, inputs, op, std::move(init),
                                           chunksize);
        });
  } else {
    return init;
  }
}

}  // namespace pool

#endif  // POOL_THREAD_POOLS_H_
