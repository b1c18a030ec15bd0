// pool::BasicPool<Backend>: the calls every pool offers (Python's multiprocessing.Pool API),
// written once over a backend (see pool/detail/backend.h). ProcessPool, GilThreadPool,
// FreeThreadPool and MpiPool derive from it and add only their options and constructors.
//
//   std::vector<double> roots = workers.map([](int x) { return std::sqrt(x); }, pool::range(100));
//   pool::AsyncResult<double> one = workers.apply_async(slow_sqrt, 2.0);
//   for (double root : workers.imap(slow_sqrt, std::views::iota(0, 1000))) print(root);
//   double sum = workers.map_reduce(term, pool::range(1, n + 1), std::plus<>(), 0.0);
//
// Contract (each pool's header adds what is its own: where tasks run, what may travel)
// - map, starmap, map_reduce, apply block; the *_async calls return at once and their callback
//   or error_callback runs once, before the result is ready (see pool/async_result.h).
// - Results are in input order. A task that throws fails the call with TaskError for the lowest
//   failing input index (index 0 for apply); the pool stays usable.
// - imap and imap_unordered read any input range, even unsized, in bounded batches ahead of the
//   reader; an rvalue range is kept by the stream, an lvalue one must outlive it. A failure is
//   thrown when the stream reaches it, after every earlier result. Destroying a stream early
//   cancels its work not started. Python's default chunksize for imap is 1.
// - chunksize 0 (map, starmap, map_reduce) means Python's default, ceil(len / (4 * size())); an
//   unsized map_reduce input then uses 1.
// - Sizes that cannot exist throw std::length_error, results beyond memory pool::OutOfMemory,
//   before anything runs; the pool is untouched.
// - close(): no more calls (later ones throw PoolNotRunning); join(): waits for every submitted
//   call, after close() or terminate() (std::logic_error otherwise); terminate(): stops now,
//   unfinished calls fail with PoolNotRunning.
#ifndef POOL_BASIC_POOL_H_
#define POOL_BASIC_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <ranges>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/args.h"
#include "pool/async_result.h"
#include "pool/detail/backend.h"
#include "pool/detail/call_adapters.h"
#include "pool/detail/call_checks.h"
#include "pool/detail/call_types.h"
#include "pool/detail/progress_calls.h"
#include "pool/result_stream.h"
#include "pool/retry.h"

namespace pool {

template <class Backend>
class BasicPool {
  static constexpr bool kTravel = Backend::kTasksTravel;

 public:
  // Workers running now.
  int size() const { return backend_.size(); }

  // f(item) for every item of a sized range (vector, array, list, pool::range, a sized view), in
  // input order.
  template <class F, class Inputs>
  std::vector<MapResult<F, Inputs>> map(F&& f, const Inputs& inputs, std::size_t chunksize = 0) {
    using R = MapResult<F, Inputs>;
    if constexpr (detail::check_map<kTravel, F, Inputs>()) {
      return with_progress(f, detail::progress_total(inputs), "map", [&](auto& function) {
        auto state = make_state<std::vector<R>>({}, {});
        backend_.template map<true, R>(function, inputs, chunksize,
                                       {"map", progress_, detail::retries_of(f)}, state);
        return AsyncResult<std::vector<R>>(std::move(state)).get();
      });
    } else {
      return {};
    }
  }

  // map that returns at once; f and the items are copied (a pool::range as its bounds).
  template <class F, class Inputs, class R = std::vector<MapResult<F, Inputs>>>
  AsyncResult<R> map_async(F&& f, const Inputs& inputs, std::size_t chunksize = 0,
                           typename AsyncResult<R>::Callback callback = {},
                           typename AsyncResult<R>::ErrorCallback error_callback = {}) {
    if constexpr (detail::check_map<kTravel, F, Inputs>()) {
      auto state = make_state<R>(std::move(callback), std::move(error_callback));
      const detail::CallInfo call{"map", false, detail::retries_of(f)};
      backend_.template map<false, typename R::value_type>(std::forward<F>(f), inputs, chunksize,
                                                           call, state);
      return AsyncResult<R>(std::move(state));
    } else {
      return AsyncResult<R>(nullptr);
    }
  }

  // f(a, b, ...) for every tuple-like item (std::tuple, std::pair, std::array) holding a, b, ...,
  // in input order; a void f gives detail::Unit results.
  template <class F, class Tuples>
  std::vector<StarmapResult<F, Tuples>> starmap(F&& f, const Tuples& inputs,
                                                std::size_t chunksize = 0) {
    if constexpr (detail::check_starmap<kTravel, F, Tuples>()) {
      if constexpr (kTravel) {
        return map(detail::starred(std::forward<F>(f)), inputs, chunksize);
      } else {
        detail::Starred<std::remove_reference_t<F>&> starred{f};  // f used in place, as map does
        return map(starred, inputs, chunksize);
      }
    } else {
      return {};
    }
  }

  template <class F, class Tuples, class R = std::vector<StarmapResult<F, Tuples>>>
  AsyncResult<R> starmap_async(F&& f, const Tuples& inputs, std::size_t chunksize = 0,
                               typename AsyncResult<R>::Callback callback = {},
                               typename AsyncResult<R>::ErrorCallback error_callback = {}) {
    if constexpr (detail::check_starmap<kTravel, F, Tuples>()) {
      return map_async(detail::starred(std::forward<F>(f)), inputs, chunksize, std::move(callback),
                       std::move(error_callback));
    } else {
      return AsyncResult<R>(nullptr);
    }
  }

  // f(args...) on a worker, on the pool's own copies of args (passed as rvalues); R may be void.
  template <class F, class... A>
  detail::CallResult<F, A...> apply(F&& f, A&&... args) {
    using R = detail::CallResult<F, A...>;
    if constexpr (detail::check_apply<kTravel, F, A...>()) {
      auto state = make_state<R>({}, {});
      post_apply<true>(f, std::tuple<std::decay_t<A>...>(std::forward<A>(args)...), state);
      return AsyncResult<R>(std::move(state)).get();
    } else {
      return R();
    }
  }

  // apply that returns at once. (clang-format 14 would run the requires-clause into the line.)
  // clang-format off
  template <class F, class... A>
    requires detail::NotArgsFirst<A...>
  AsyncResult<detail::CallResult<F, A...>> apply_async(F&& f, A&&... args) {
    // clang-format on
    if constexpr (detail::TakesStopToken<F, A...>) {
      static_assert(!kTravel,
                    "apply_async/submit: a task taking a std::stop_token runs on thread pools; on "
                    "a ProcessPool, cancel(pool::kill_running) stops a running task");
      if constexpr (!kTravel) {
        std::stop_source stop;
        auto result = apply_async(
            detail::WithStopToken<std::decay_t<F>>{std::forward<F>(f), stop.get_token()},
            pool::args(std::forward<A>(args)...), {}, {});
        result.state()->set_stop_source(std::move(stop));
        return result;
      }
    } else {
      return apply_async(std::forward<F>(f), pool::args(std::forward<A>(args)...), {}, {});
    }
  }

  // concurrent.futures' Executor.submit(f, *args): apply_async under its name. The result is the
  // pool's future (done, result, exception, add_done_callback; pool::wait, pool::as_completed).
  // clang-format off
  template <class F, class... A>
    requires detail::NotArgsFirst<A...>
  AsyncResult<detail::CallResult<F, A...>> submit(F&& f, A&&... args) {
    // clang-format on
    return apply_async(std::forward<F>(f), std::forward<A>(args)...);
  }

  // Python's apply_async(f, args=(a, b), callback=..., error_callback=...):
  // apply_async(f, pool::args(a, b), callback[, error_callback]).
  template <class F, class... T>
  AsyncResult<detail::CallResult<F, T...>> apply_async(
      F&& f, Args<T...> arguments,
      typename AsyncResult<detail::CallResult<F, T...>>::Callback callback = {},
      typename AsyncResult<detail::CallResult<F, T...>>::ErrorCallback error_callback = {}) {
    using R = detail::CallResult<F, T...>;
    if constexpr (detail::check_apply<kTravel, F, T...>()) {
      auto state = make_state<R>(std::move(callback), std::move(error_callback));
      post_apply<false>(std::forward<F>(f), std::move(arguments.values), state);
      return AsyncResult<R>(std::move(state));
    } else {
      return AsyncResult<R>(nullptr);
    }
  }

  // Results as they arrive, in input order.
  template <class F, class Inputs>
  ResultStream<StreamResult<F, Inputs>> imap(F&& f, Inputs&& inputs, std::size_t chunksize = 1) {
    using R = StreamResult<F, Inputs>;
    if constexpr (detail::check_imap<kTravel, F, Inputs>()) {
      return stream<R, true>("imap", std::forward<F>(f), std::forward<Inputs>(inputs), chunksize);
    } else {
      return ResultStream<R>(nullptr);
    }
  }

  // (input index, result) pairs in the order they finish.
  template <class F, class Inputs>
  ResultStream<std::pair<std::size_t, StreamResult<F, Inputs>>> imap_unordered(
      F&& f, Inputs&& inputs, std::size_t chunksize = 1) {
    using Out = std::pair<std::size_t, StreamResult<F, Inputs>>;
    if constexpr (detail::check_imap<kTravel, F, Inputs>()) {
      return stream<Out, false>("imap_unordered", std::forward<F>(f), std::forward<Inputs>(inputs),
                                chunksize);
    } else {
      return ResultStream<Out>(nullptr);
    }
  }

  // op(...op(op(init, f(x0)), f(x1))..., f(xn)) without ever holding all results: each chunk is
  // folded from init with op(T, result), and the chunks' values in input order with op(T, T).
  // init must be op's identity and op associative; the result then equals the serial fold. Any
  // input range; long or unsized inputs are read in batches as imap does.
  template <class F, class Inputs, class Op, class T>
  T map_reduce(F&& f, Inputs&& inputs, Op op, T init, std::size_t chunksize = 0) {
    if constexpr (detail::check_map_reduce<kTravel, F, Inputs, Op, T>()) {
      return with_progress(f, detail::progress_total(inputs), "map_reduce", [&](auto& function) {
        return backend_.map_reduce(function, std::forward<Inputs>(inputs), op, std::move(init),
                                   chunksize, {"map_reduce", progress_, detail::retries_of(f)});
      });
    } else {
      return init;
    }
  }

  // No more calls may be submitted; those submitted still run. Python's close().
  void close() { backend_.close(); }
  // Waits for every submitted call, then stops the workers. close() or terminate() first.
  void join() { backend_.join(); }
  // Stops now; calls not finished fail with PoolNotRunning.
  void terminate() { backend_.terminate(); }

 protected:
  BasicPool(Backend backend, bool progress) : backend_(std::move(backend)), progress_(progress) {}
  ~BasicPool() = default;
  BasicPool(BasicPool&&) noexcept = default;
  BasicPool& operator=(BasicPool&&) noexcept = default;

  Backend& backend() { return backend_; }
  const Backend& backend() const { return backend_; }

 private:
  template <class R>
  std::shared_ptr<detail::AsyncState<R>> make_state(typename AsyncResult<R>::Callback callback,
                                                    typename AsyncResult<R>::ErrorCallback error) {
    return std::make_shared<detail::AsyncState<R>>(backend_.driver(), std::move(callback),
                                                   std::move(error));
  }

  template <bool kBlocking, class F, class Tuple, class R>
  void post_apply(F&& f, Tuple arguments, const std::shared_ptr<detail::AsyncState<R>>& state) {
    const detail::CallInfo call{"apply", false, detail::retries_of(f)};
    if constexpr (kBlocking && !kTravel) {
      backend_.template apply<true>(detail::Applied<std::remove_reference_t<F>&>{f},
                                    std::move(arguments), call, state);
    } else {
      backend_.template apply<kBlocking>(detail::Applied<std::decay_t<F>>{std::forward<F>(f)},
                                         std::move(arguments), call, state);
    }
  }

  // body(function): f itself, or f counting its items into a progress bar drawn meanwhile. A
  // task that travels counts with its own copy of f; a thread uses f in place.
  template <class F, class Body>
  auto with_progress(F& f, std::optional<std::uint64_t> total, const char* name, Body&& body) {
    if constexpr (Backend::kCountsItems) {
      if (progress_) {
        return detail::run_with_progress(total, name, [&](const auto& session) {
          if constexpr (kTravel) {
            auto counted = session.counted(std::decay_t<F>(f));
            return body(counted);
          } else {
            auto counted = session.template counted<F&>(f);
            return body(counted);
          }
        });
      }
    }
    return body(f);
  }

  template <class Out, bool kOrdered, class F, class Inputs>
  ResultStream<Out> stream(const char* name, F&& f, Inputs&& inputs, std::size_t chunksize) {
    if constexpr (Backend::kCountsItems) {
      if (progress_) {
        return detail::stream_with_progress(
            detail::progress_total(inputs), name, [&](const auto& session) {
              const detail::CallInfo call{name, false, detail::retries_of(f)};
              return backend_.template stream<Out, kOrdered>(
                  session.counted(std::decay_t<F>(std::forward<F>(f))),
                  std::forward<Inputs>(inputs), chunksize, call);
            });
      }
    }
    const detail::CallInfo call{name, progress_, detail::retries_of(f)};
    return backend_.template stream<Out, kOrdered>(std::forward<F>(f), std::forward<Inputs>(inputs),
                                                   chunksize, call);
  }

  Backend backend_;
  bool progress_ = false;
};

}  // namespace pool

#endif  // POOL_BASIC_POOL_H_
