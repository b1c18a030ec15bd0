// pool::ProcessPool: Python's multiprocessing.Pool for C++, on forked worker processes.
//
//   pool::ProcessPool workers(4);
//   std::vector<double> roots = workers.map([](int x) { return std::sqrt(x); }, pool::range(1000));
//
// Contract
// - Workers are forked once, in the constructor, and replaced when one dies or has run
//   maxtasksperchild chunks. Create the pool before the process starts threads: fork() copies
//   only the calling thread, and any mutex another thread held stays locked forever in the
//   workers. The constructor refuses to fork when other threads exist, unless
//   ProcessPoolOptions::allow_fork_with_threads is set, and so does every replacement: a process
//   that started threads later (a thread pool, OpenMP) keeps its pool's running workers but gets
//   no replacements until the threads are gone.
// - A replacement that cannot be started (fork refused for lack of memory or processes, threads
//   running, a start-up longer than start_timeout) is tried again while calls need workers, after
//   50 ms, then twice as long each time up to 1 s. Meanwhile the pool runs on the workers it has
//   and size() says how many. When it has none left and 8 tries in a row failed (or one start-up
//   overran), every pending and later call fails with WorkerStartError naming the cause; the
//   destructor never waits for workers that cannot exist.
// - A task function may be a function pointer, a lambda or a function object. It runs in another
//   process, so its state is copied there: it must be trivially copyable (a lambda capturing
//   numbers by value) or serializable with cereal (a struct with serialize()). Do not capture by
//   reference or hold pointers: they would point into the worker's copy of the parent's memory as
//   it was when the worker was forked. Arguments and results follow the same rule.
// - Work proceeds in the workers on its own; the parent notices finished work, runs callbacks and
//   replaces dead workers whenever the pool's thread calls into the pool or waits on one of its
//   results or streams. There is no background thread in the parent.
// - Failures: a task that throws fails its call with TaskError (the lowest failing index); a
//   worker that dies fails the call it was running with WorkerDied at once, and is replaced; a task
//   running longer than task_timeout is killed: TaskTimeout. The pool stays usable after each.
// - Ctrl-C (SIGINT) while the caller waits on the pool stops and reaps the workers and throws
//   Interrupted; the pool is then terminated. Programs usually exit with status 130.
// - Results come back through shared memory: a trivially copyable result is written by the
//   worker straight into its slot and copied once into the returned vector; other results are
//   cereal-serialized into the worker's result buffer and deserialized once.
// - The destructor waits for every submitted call (close() + join()), unless terminate() was
//   called; it removes every shared-memory segment; workers also die if the parent dies
//   (PR_SET_PDEATHSIG).
// - Not thread-safe: a pool, its results and its streams are used by the thread that created the
//   pool; a call from another thread throws std::logic_error (it would race on the shared
//   arena). Python's Pool takes calls from any thread because a background thread does its
//   bookkeeping; this pool has none, so that nothing runs in the parent behind the caller's back.
//   Use one pool per thread, or a thread pool. Callbacks run in that thread and must not call the
//   pool. A worker process cannot use its parent's pool.
// - Linux only.
#ifndef POOL_PROCESS_POOL_H_
#define POOL_PROCESS_POOL_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/args.h"
#include "pool/async_result.h"
#include "pool/detail/call_adapters.h"
#include "pool/detail/process_calls.h"
#include "pool/detail/process_pool_core.h"
#include "pool/detail/progress_calls.h"
#include "pool/detail/serialization.h"
#include "pool/detail/transfer_checks.h"
#include "pool/range.h"
#include "pool/result_stream.h"
#include "pool/trace.h"

namespace pool {

struct ProcessPoolOptions {
  // Fork even though other threads run; only safe if no thread holds a lock a task will need
  // (malloc's are handled by glibc, but a logger's or an I/O library's are not).
  bool allow_fork_with_threads = false;
  // Runs once in every worker right after it is forked (Python's initializer + initargs: capture
  // the arguments). It runs in a fork, so it may use anything the parent had. If it throws, the
  // constructor (or the call during which a replacement failed) throws InitializerError, and the
  // pool stops: no worker that cannot start is started again and again.
  std::function<void()> initializer;
  // A worker is replaced after running this many chunks (Python's tasks); 0: never.
  std::uint64_t maxtasksperchild = 0;
  // A task running longer than this is killed with its worker (TaskTimeout); zero: no limit.
  // Checked while the parent waits on the pool, at least every 50 ms.
  std::chrono::nanoseconds task_timeout{0};
  // A worker that has not finished starting (fork, then the initializer) within this time is
  // killed and reported: the pool carries on with the workers it has, and when it has none left,
  // calls fail with WorkerStartError. Checked while the parent waits on the pool. Zero: no limit.
  std::chrono::nanoseconds start_timeout = std::chrono::seconds(60);
  // Ctrl-C while waiting on the pool terminates it and throws Interrupted. Only when SIGINT has
  // its default action; a program's own SIGINT handler is left alone.
  bool handle_interrupts = true;
  // Draw a progress bar on stderr for every map, starmap, imap and map_reduce (see
  // pool/progress_bar.h): redrawn in place on a terminal, a line every second otherwise.
  bool progress = false;
  // Record a timeline of every worker into this trace (see pool/trace.h); it is complete once the
  // pool stopped its workers. Null: nothing is recorded and nothing is paid.
  std::shared_ptr<Trace> trace;
};

class ProcessPool {
 public:
  // One worker per CPU this process may use (see available_cpus()).
  ProcessPool();
  // Throws std::invalid_argument if ncores < 1, std::logic_error if other threads run,
  // InitializerError if the initializer throws, std::system_error if fork or shared memory fails.
  explicit ProcessPool(int ncores, ProcessPoolOptions options = {});
  ~ProcessPool();
  ProcessPool(ProcessPool&&) noexcept;
  ProcessPool& operator=(ProcessPool&&) noexcept;

  // The number of worker processes running (or starting). Fewer than asked for while a dead
  // worker's replacement cannot be started (see "Contract"); 0 once none can be.
  int size() const;

  // f applied to every item of inputs, in input order. inputs is any sized range (vector, array,
  // list, pool::range); chunksize 0 means Python's default, ceil(len / (4 * size())). Sizes that
  // cannot exist throw std::length_error, results beyond memory and swap (or the memory cgroup's
  // limit) pool::OutOfMemory, before anything is posted; the pool is untouched.
  template <class F, class Inputs>
  std::vector<MapResult<F, Inputs>> map(F&& f, const Inputs& inputs, std::size_t chunksize = 0) {
    if (progress_) {
      detail::check_map_call<F, Inputs>();
      return detail::run_with_progress(
          detail::progress_total(inputs), "map", [&](const auto& session) {
            return map_async(session.counted(std::decay_t<F>(f)), inputs, chunksize).get();
          });
    }
    return map_async(std::forward<F>(f), inputs, chunksize).get();
  }

  // map without waiting: the call runs while the caller goes on.
  template <class F, class Inputs, class R = std::vector<MapResult<F, Inputs>>>
  AsyncResult<R> map_async(F&& f, const Inputs& inputs, std::size_t chunksize = 0,
                           typename AsyncResult<R>::Callback callback = {},
                           typename AsyncResult<R>::ErrorCallback error_callback = {}) {
    detail::check_map_call<F, Inputs>();
    auto state = std::make_shared<detail::AsyncState<R>>(&core(), std::move(callback),
                                                         std::move(error_callback));
    detail::post_map(
        core(), static_cast<const std::decay_t<F>&>(f), inputs, chunksize,
        [state](R&& results) { state->succeed(std::move(results)); },
        [state](std::exception_ptr error) { state->fail(std::move(error)); });
    return AsyncResult<R>(state);
  }

  // f(a, b, ...) for every tuple-like item (a, b, ...) of inputs (std::tuple, std::pair,
  // std::array), in input order.
  template <class F, class Tuples>
  auto starmap(F&& f, const Tuples& inputs, std::size_t chunksize = 0) {
    return map(detail::starred(std::forward<F>(f)), inputs, chunksize);
  }
  template <class F, class Tuples,
            class R = std::vector<MapResult<detail::Starred<std::decay_t<F>>, Tuples>>>
  AsyncResult<R> starmap_async(F&& f, const Tuples& inputs, std::size_t chunksize = 0,
                               typename AsyncResult<R>::Callback callback = {},
                               typename AsyncResult<R>::ErrorCallback error_callback = {}) {
    return map_async(detail::starred(std::forward<F>(f)), inputs, chunksize, std::move(callback),
                     std::move(error_callback));
  }

  // f(args...) in a worker; R may be void.
  template <class F, class... A>
  auto apply(F&& f, A&&... args) {
    return apply_async(std::forward<F>(f), std::forward<A>(args)...).get();
  }
  template <class F, class... A>
  requires(sizeof...(A) == 0 ||
           !is_args<std::decay_t<std::tuple_element_t<0, std::tuple<A..., int>>>>::
               value) auto apply_async(F&& f, A&&... args) {
    return apply_async(std::forward<F>(f), pool::args(std::forward<A>(args)...), {}, {});
  }
  // Python's apply_async(f, args=(...), callback=..., error_callback=...).
  template <class F, class... T, class R = std::invoke_result_t<std::decay_t<F>&, T&...>>
  AsyncResult<R> apply_async(F&& f, Args<T...> arguments,
                             typename AsyncResult<R>::Callback callback = {},
                             typename AsyncResult<R>::ErrorCallback error_callback = {}) {
    using Tuple = std::tuple<T...>;
    using Function = detail::Starred<std::decay_t<F>>;
    using Value = std::conditional_t<std::is_void_v<R>, detail::Unit, R>;
    static_assert(detail::kTransferable<Tuple>,
                  "ProcessPool::apply_async: arguments must be trivially copyable or "
                  "cereal-serializable");
    detail::check_task_function<Function>();
    auto state = std::make_shared<detail::AsyncState<R>>(&core(), std::move(callback),
                                                         std::move(error_callback));
    const std::vector<Tuple> one{std::move(arguments.values)};
    detail::post_map<Function, std::vector<Tuple>, Value>(
        core(), Function{std::forward<F>(f)}, one, 1,
        [state](std::vector<Value>&& results) {
          if constexpr (std::is_void_v<R>) {
            state->succeed();
          } else {
            state->succeed(std::move(results.front()));
          }
        },
        [state](std::exception_ptr error) { state->fail(std::move(error)); });
    return AsyncResult<R>(state);
  }

  // Results as they arrive, in input order; inputs may be any input range, even unsized, and is
  // read in batches (an rvalue is kept by the stream). Python's default chunksize for imap is 1.
  template <class F, class Inputs>
  ResultStream<StreamResult<F, Inputs>> imap(F&& f, Inputs&& inputs, std::size_t chunksize = 1) {
    return stream<detail::OrderedSource, StreamResult<F, Inputs>>(
        "imap", std::forward<F>(f), std::forward<Inputs>(inputs), chunksize);
  }
  // (input index, result) pairs in the order they finish.
  template <class F, class Inputs>
  ResultStream<std::pair<std::size_t, StreamResult<F, Inputs>>> imap_unordered(
      F&& f, Inputs&& inputs, std::size_t chunksize = 1) {
    return stream<detail::UnorderedSource, std::pair<std::size_t, StreamResult<F, Inputs>>>(
        "imap_unordered", std::forward<F>(f), std::forward<Inputs>(inputs), chunksize);
  }

  // op(...op(op(init, f(x0)), f(x1))..., f(xn)) without ever holding all results: each chunk is
  // folded in its worker from init with op(T, result), and the chunks' partial values are folded
  // in input order in the caller with op(T, T). init must be op's identity and op associative
  // (then the result equals the serial fold). The slow series is one call:
  //   workers.map_reduce(term, pool::range(1, n + 1), std::plus<>(), 0.0).
  template <class F, class Inputs, class Op, class T>
  T map_reduce(F&& f, Inputs&& inputs, Op op, T init, std::size_t chunksize = 0) {
    if (progress_) {
      detail::check_stream_call<F, Inputs>();
      return detail::run_with_progress(
          detail::progress_total(inputs), "map_reduce", [&](const auto& session) {
            return map_reduce_in_chunks(session.counted(std::decay_t<F>(f)),
                                        std::forward<Inputs>(inputs), op, init, chunksize);
          });
    }
    return map_reduce_in_chunks(std::forward<F>(f), std::forward<Inputs>(inputs), op, init,
                                chunksize);
  }

  // No more calls may be submitted; those submitted still run. Python's close().
  void close();
  // Waits for every submitted call, then stops the workers. close() or terminate() first.
  void join();
  // Stops the workers now (SIGKILL); calls not finished fail with PoolNotRunning.
  void terminate();

 private:
  detail::ProcessPoolCore& core() const;

  template <class F, class Inputs, class Op, class T>
  T map_reduce_in_chunks(F&& f, Inputs&& inputs, Op op, T init, std::size_t chunksize) {
    using Function = std::decay_t<F>;
    using R = StreamResult<F, Inputs>;
    using Feeder = detail::BatchFeeder<Function, Inputs, T>;
    detail::check_stream_call<F, Inputs>();
    static_assert(std::is_convertible_v<std::invoke_result_t<Op&, T, R>, T> &&
                      std::is_convertible_v<std::invoke_result_t<Op&, T, T>, T>,
                  "ProcessPool::map_reduce: op must take (T, result) and (T, T) and return T");
    static_assert(detail::kTransferable<Op> && detail::kTransferable<T>,
                  "ProcessPool::map_reduce: op and init travel to the workers, so they must be "
                  "trivially copyable or cereal-serializable");
    core().check_can_submit();
    if (chunksize == 0) {
      if constexpr (std::ranges::sized_range<std::views::all_t<Inputs>>) {
        chunksize = detail::default_chunksize(static_cast<std::size_t>(std::ranges::size(inputs)),
                                              static_cast<std::size_t>(size()));
      } else {
        chunksize = 1;
      }
    }
    auto feeder = std::make_unique<Feeder>(
        core(), Function(std::forward<F>(f)), std::forward<Inputs>(inputs), chunksize, true,
        [op, init](detail::JobBuilder& builder) { builder.reduction(op, init); },
        &detail::run_reduce_job<Function, typename Feeder::Item, Feeder::kLazyRange, Op, T>);
    detail::OrderedSource<Feeder, T> partials(std::move(feeder));
    T total = init;
    std::vector<T> batch;
    while (partials.next_batch(batch)) {
      for (T& partial : batch) total = op(std::move(total), std::move(partial));
      batch.clear();
    }
    return total;
  }

  // imap or imap_unordered, with a progress bar when the pool has the option.
  template <template <class, class> class Source, class Out, class F, class Inputs>
  ResultStream<Out> stream(const char* description, F&& f, Inputs&& inputs, std::size_t chunksize) {
    auto make = [&](auto&& function) {
      using R = StreamResult<decltype(function), Inputs>;
      auto feeder = map_feeder(std::forward<decltype(function)>(function),
                               std::forward<Inputs>(inputs), chunksize);
      using Feeder = typename decltype(feeder)::element_type;
      return ResultStream<Out>(std::make_unique<Source<Feeder, R>>(std::move(feeder)));
    };
    if (progress_) {
      detail::check_stream_call<F, Inputs>();
      return detail::stream_with_progress(
          detail::progress_total(inputs), description,
          [&](const auto& session) { return make(session.counted(std::decay_t<F>(f))); });
    }
    return make(std::forward<F>(f));
  }

  // The batches of an imap or imap_unordered call.
  template <class F, class Inputs>
  auto map_feeder(F&& f, Inputs&& inputs, std::size_t chunksize) {
    using Function = std::decay_t<F>;
    using Feeder = detail::BatchFeeder<Function, Inputs, StreamResult<F, Inputs>>;
    detail::check_stream_call<F, Inputs>();
    core().check_can_submit();
    return std::make_unique<Feeder>(
        core(), Function(std::forward<F>(f)), std::forward<Inputs>(inputs), chunksize, false,
        nullptr, &detail::run_map_job<Function, typename Feeder::Item, Feeder::kLazyRange>);
  }

  std::unique_ptr<detail::ProcessPoolCore> core_;
  bool progress_ = false;
};

}  // namespace pool

#endif  // POOL_PROCESS_POOL_H_
