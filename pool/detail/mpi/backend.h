// MpiPool's backend (see backend.h): rank 0 cuts each call into encoded chunks and hands them to
// the worker ranks; the task's code is named by its runner's registry id (function_identity.h).
// Progress is counted on rank 0 as chunks come back, since tasks run on other nodes.
#ifndef POOL_DETAIL_MPI_BACKEND_H_
#define POOL_DETAIL_MPI_BACKEND_H_

#include <algorithm>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/async_result.h"
#include "pool/detail/backend.h"
#include "pool/detail/call_adapters.h"
#include "pool/detail/call_types.h"
#include "pool/detail/chunking.h"
#include "pool/detail/function_identity.h"
#include "pool/detail/mpi/jobs.h"
#include "pool/detail/mpi/map_runners.h"
#include "pool/detail/mpi/pool_core.h"
#include "pool/detail/mpi/stream_batches.h"
#include "pool/detail/progress_calls.h"
#include "pool/detail/stream_engine.h"
#include "pool/range.h"
#include "pool/result_stream.h"

namespace pool::detail {

class MpiBackend {
 public:
  static constexpr bool kTasksTravel = true;
  static constexpr bool kCountsItems = false;

  explicit MpiBackend(std::unique_ptr<MpiPoolCore> core) : core_(std::move(core)) {}

  int size() const { return core_->size(); }
  Driver* driver() { return core_.get(); }

  template <bool kBlocking, class R, class F, class Inputs>
  void map(F&& f, const Inputs& inputs, std::size_t chunksize, CallInfo call,
           const std::shared_ptr<AsyncState<std::vector<R>>>& state) {
    state->set_canceller(post_map<std::decay_t<F>, R>(call, f, inputs, chunksize,
                                                      succeed_with_all(state), fail_with(state)));
  }

  // A map of one item: the arguments' tuple.
  template <bool kBlocking, class R, class F, class Tuple>
  void apply(F&& f, Tuple arguments, CallInfo, const std::shared_ptr<AsyncState<R>>& state) {
    using Value = std::conditional_t<std::is_void_v<R>, Unit, R>;
    const std::vector<Tuple> one{std::move(arguments)};
    state->set_canceller(post_map<std::decay_t<F>, Value>(
        CallInfo{"apply", false}, f, one, 1, succeed_with_first(state), fail_with(state)));
  }

  template <class Out, bool kOrdered, class F, class Inputs>
  ResultStream<Out> stream(F&& f, Inputs&& inputs, std::size_t chunksize, CallInfo call) {
    using Function = std::decay_t<F>;
    using Item = std::ranges::range_value_t<std::remove_reference_t<Inputs>>;
    constexpr bool kLazyRange = is_pool_range<std::remove_cvref_t<Inputs>>::value;
    using Batches =
        MpiStreamBatches<Item, kLazyRange, ItemResult<F, std::remove_reference_t<Inputs>>>;
    core_->check_can_submit();
    chunksize = stream_chunksize(inputs, static_cast<std::size_t>(size()), chunksize);
    Batches batches(*core_, call, runner_id<MpiMapRunner<Function, Item, kLazyRange>>(),
                    encode_task(static_cast<const Function&>(f)), false, progress_total(inputs));
    return make_stream<Out, kOrdered>(std::move(batches), std::forward<Inputs>(inputs), chunksize);
  }

  template <class F, class Inputs, class Op, class T>
  T map_reduce(F& f, Inputs&& inputs, Op& op, T init, std::size_t chunksize, CallInfo call) {
    using Function = std::decay_t<F>;
    using Item = std::ranges::range_value_t<std::remove_reference_t<Inputs>>;
    constexpr bool kLazyRange = is_pool_range<std::remove_cvref_t<Inputs>>::value;
    using Runner = MpiReduceRunner<Function, Item, kLazyRange, Op, T>;
    core_->check_can_submit();
    chunksize = stream_chunksize(inputs, static_cast<std::size_t>(size()), chunksize);
    std::string state = StatePacker()
                            .add_encoded(encode_task(static_cast<const Function&>(f)))
                            .add_encoded(encode_task(op))
                            .add(init)
                            .take();
    MpiStreamBatches<Item, kLazyRange, T> batches(*core_, call, runner_id<Runner>(),
                                                  std::move(state), true, progress_total(inputs));
    return fold_stream(std::move(batches), inputs, chunksize, op, std::move(init));
  }

  void close() { core_->close(); }
  void join() { core_->join(); }
  void terminate() { core_->terminate(); }

 private:
  // Returns the call's canceller (AsyncStateBase::Canceller).
  template <class Function, class R, class Inputs, class Succeed, class Fail>
  AsyncStateBase::Canceller post_map(CallInfo call, const Function& f, const Inputs& inputs,
                                     std::size_t chunksize, Succeed succeed, Fail fail) {
    using Item = std::ranges::range_value_t<const Inputs>;
    constexpr bool kLazyRange = is_pool_range<Inputs>::value;
    using Runner = MpiMapRunner<Function, Item, kLazyRange>;
    core_->check_can_submit();
    const auto items = static_cast<std::size_t>(std::ranges::size(inputs));
    if (chunksize == 0) chunksize = default_chunksize(items, static_cast<std::size_t>(size()));
    // Before the chunk list is made: an impossible size must not exhaust memory on the way.
    check_mpi_map_sizes<R>(call.name, items, chunk_count(items, chunksize));
    auto job = std::make_shared<MpiMapJob<R>>(
        call.name, runner_id<Runner>(), encode_task(f),
        cut_chunks<Item, kLazyRange>(0, items, chunksize, std::ranges::begin(inputs)), items,
        std::move(succeed), std::move(fail));
    if (call.progress) job->progress().show(call.name);
    std::weak_ptr<MpiMapJob<R>> weak = job;
    core_->submit(std::move(job));
    return [weak = std::move(weak)](Cancel) {
      const std::shared_ptr<MpiMapJob<R>> job = weak.lock();
      return job && job->cancel_if_not_started(cancelled_error());
    };
  }

  std::unique_ptr<MpiPoolCore> core_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_MPI_BACKEND_H_
