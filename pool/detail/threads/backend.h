// The thread pools' backend (see backend.h): calls become ThreadPoolCore jobs whose chunks run
// in the pool's threads, in the caller's memory. Blocking calls use f and the inputs in place;
// the others copy f, and map_async copies the items (a pool::range as its bounds), as Python's
// map_async copies its iterable into a list.
#ifndef POOL_DETAIL_THREADS_BACKEND_H_
#define POOL_DETAIL_THREADS_BACKEND_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/async_result.h"
#include "pool/detail/backend.h"
#include "pool/detail/call_adapters.h"
#include "pool/detail/chunking.h"
#include "pool/detail/memory_limits.h"
#include "pool/detail/stream_engine.h"
#include "pool/detail/threads/core.h"
#include "pool/detail/threads/kernels.h"
#include "pool/detail/threads/map_jobs.h"
#include "pool/detail/threads/stream_batches.h"
#include "pool/range.h"
#include "pool/result_stream.h"

namespace pool::detail {

class ThreadBackend {
 public:
  static constexpr bool kTasksTravel = false;
  static constexpr bool kCountsItems = true;

  explicit ThreadBackend(std::unique_ptr<ThreadPoolCore> core) : core_(std::move(core)) {}

  int size() const { return core_->size(); }
  Driver* driver() { return nullptr; }  // threads settle results themselves
  ThreadPoolCore& core() const { return *core_; }

  template <bool kBlocking, class R, class F, class Inputs>
  void map(F&& f, const Inputs& inputs, std::size_t chunksize, CallInfo,
           const std::shared_ptr<AsyncState<std::vector<R>>>& state) {
    core_->check_can_submit();
    const std::size_t n = static_cast<std::size_t>(std::ranges::size(inputs));
    constexpr bool kOwnsItems = !kBlocking && !is_pool_range<Inputs>::value;
    check_map_sizes<R>(n, kOwnsItems ? sizeof(std::ranges::range_value_t<const Inputs>) : 0);
    if (chunksize == 0) chunksize = default_chunksize(n, static_cast<std::size_t>(size()));
    if constexpr (kBlocking) {
      if (n == 0) return state->succeed(std::vector<R>());
      using Fn = std::remove_reference_t<F>&;
      // Nobody can cancel it: the caller waits on it.
      core_->submit(
          std::make_shared<ThreadMapJob<Fn, const Inputs&, R>>(f, inputs, n, chunksize, state));
    } else {
      using Owned =
          std::conditional_t<kOwnsItems, std::vector<std::ranges::range_value_t<const Inputs>>,
                             Inputs>;
      Owned owned = [&] {
        if constexpr (kOwnsItems) {
          Owned items;
          items.reserve(n);
          for (const auto& item : inputs) items.push_back(item);
          return items;
        } else {
          return inputs;
        }
      }();
      submit_cancellable(std::make_shared<ThreadMapJob<std::decay_t<F>, Owned, R>>(
                             std::forward<F>(f), std::move(owned), n, chunksize, state),
                         *state);
    }
  }

  template <bool kBlocking, class R, class G, bool kMove, class Tuple>
  void apply(Starred<G, kMove>&& f, Tuple arguments, CallInfo,
             const std::shared_ptr<AsyncState<R>>& state) {
    auto job = std::make_shared<ThreadApplyJob<G, Tuple, R>>(std::forward<G>(f.function),
                                                             std::move(arguments), state);
    if constexpr (kBlocking) {
      core_->submit(std::move(job));  // nobody can cancel it: the caller waits on it
    } else {
      submit_cancellable(std::move(job), *state);
    }
  }

  // The stream owns a copy of f, and the input when it is an rvalue.
  template <class Out, bool kOrdered, class F, class Inputs>
  ResultStream<Out> stream(F&& f, Inputs&& inputs, std::size_t chunksize, CallInfo) {
    using Range = std::remove_reference_t<Inputs>;
    using Result = ItemResult<F, Range>;
    using Kernel = MapKernel<std::decay_t<F>, std::ranges::range_value_t<Range>, Result>;
    core_->check_can_submit();
    chunksize = stream_chunksize(inputs, static_cast<std::size_t>(size()), chunksize);
    if constexpr (std::ranges::sized_range<Range>) {
      // A chunk's results are held together, so a chunk of a long input can be too large to exist.
      const std::uint64_t items =
          std::min<std::uint64_t>(chunksize, static_cast<std::uint64_t>(std::ranges::size(inputs)));
      const std::uint64_t bytes =
          checked_product(items, sizeof(Result), "imap's chunk of results (items x bytes)");
      if (beyond_memory_limit(bytes)) {
        check_memory_request(bytes, "imap's chunk of " + std::to_string(items) + " results");
      }
    }
    return make_stream<Out, kOrdered>(
        ThreadStreamBatches<Kernel>(*core_, Kernel{std::forward<F>(f)}),
        std::forward<Inputs>(inputs), chunksize);
  }

  // Blocks; f, op and inputs are used in place.
  template <class F, class Inputs, class Op, class T>
  T map_reduce(F& f, Inputs&& inputs, Op& op, T init, std::size_t chunksize, CallInfo) {
    using Result = ItemResult<F, std::remove_reference_t<Inputs>>;
    using Kernel = ReduceKernel<F&, std::ranges::range_value_t<std::remove_reference_t<Inputs>>,
                                Result, Op&, T>;
    core_->check_can_submit();
    chunksize = stream_chunksize(inputs, static_cast<std::size_t>(size()), chunksize);
    return fold_stream(ThreadStreamBatches<Kernel>(*core_, Kernel{f, op, init}), inputs, chunksize,
                       op, init);
  }

  void close() { core_->close(); }
  void join() { core_->join(); }
  void terminate() { core_->terminate(); }

 private:
  // Queues `job`; its result's cancel() drops it while no thread has taken a chunk. A thread
  // cannot be killed: kill_running does no more (a task may take a std::stop_token instead).
  void submit_cancellable(std::shared_ptr<ThreadJob> job, AsyncStateBase& state) {
    std::weak_ptr<ThreadJob> weak = job;
    core_->submit(std::move(job));
    state.set_canceller([weak = std::move(weak)](Cancel) {
      const std::shared_ptr<ThreadJob> job = weak.lock();
      return job && job->cancel_if_not_started(cancelled_error());
    });
  }

  std::unique_ptr<ThreadPoolCore> core_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_THREADS_BACKEND_H_
