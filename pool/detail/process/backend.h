// ProcessPool's backend (see backend.h): calls become jobs laid out in the shared arena, whose
// chunks the forked workers take from the job's cursor; results come back through shared memory.
// Everything here runs in the parent, in the thread that uses the pool.
#ifndef POOL_DETAIL_PROCESS_BACKEND_H_
#define POOL_DETAIL_PROCESS_BACKEND_H_

#include <cstddef>
#include <exception>
#include <memory>
#include <ranges>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/async_result.h"
#include "pool/detail/backend.h"
#include "pool/detail/call_adapters.h"
#include "pool/detail/chunking.h"
#include "pool/detail/process/chunk_kernels.h"
#include "pool/detail/process/core.h"
#include "pool/detail/process/map_call.h"
#include "pool/detail/process/stream_batches.h"
#include "pool/detail/stream_engine.h"
#include "pool/result_stream.h"

namespace pool::detail {

class ProcessBackend {
 public:
  static constexpr bool kTasksTravel = true;
  static constexpr bool kCountsItems = true;

  explicit ProcessBackend(std::unique_ptr<ProcessPoolCore> core) : core_(std::move(core)) {}

  int size() const { return core_ ? core_->running() : 0; }
  Driver* driver() { return &core(); }
  ProcessPoolCore& core() const {
    if (!core_) throw std::logic_error("pool: this ProcessPool was moved from");
    return *core_;
  }

  template <bool kBlocking, class R, class F, class Inputs>
  void map(F&& f, const Inputs& inputs, std::size_t chunksize, CallInfo call,
           const std::shared_ptr<AsyncState<std::vector<R>>>& state) {
    cancellable(*state,
                post_map<std::decay_t<F>, Inputs, R>(core(), f, inputs, chunksize, call.retries,
                                                     succeed_with_all(state), fail_with(state)));
  }

  // A map of one item: the arguments' tuple.
  template <bool kBlocking, class R, class F, class Tuple>
  void apply(F&& f, Tuple arguments, CallInfo call, const std::shared_ptr<AsyncState<R>>& state) {
    using Value = std::conditional_t<std::is_void_v<R>, Unit, R>;
    const std::vector<Tuple> one{std::move(arguments)};
    cancellable(*state,
                post_map<std::decay_t<F>, std::vector<Tuple>, Value>(
                    core(), f, one, 1, call.retries, succeed_with_first(state), fail_with(state)));
  }

  template <class Out, bool kOrdered, class F, class Inputs>
  ResultStream<Out> stream(F&& f, Inputs&& inputs, std::size_t chunksize, CallInfo call) {
    using Function = std::decay_t<F>;
    using Types = MapTypes<Function, Inputs>;
    using Batches = ProcessStreamBatches<Function, typename Types::Item, Types::kLazyRange,
                                         ItemResult<F, std::remove_reference_t<Inputs>>>;
    core().check_can_submit();
    chunksize = stream_chunksize(inputs, static_cast<std::size_t>(size()), chunksize);
    return make_stream<Out, kOrdered>(
        Batches(core(), Function(std::forward<F>(f)),
                &run_map_job<Function, typename Types::Item, Types::kLazyRange>, call.retries),
        std::forward<Inputs>(inputs), chunksize);
  }

  template <class F, class Inputs, class Op, class T>
  T map_reduce(F& f, Inputs&& inputs, Op& op, T init, std::size_t chunksize, CallInfo call) {
    using Function = std::decay_t<F>;
    using Types = MapTypes<Function, Inputs>;
    using Batches = ProcessStreamBatches<Function, typename Types::Item, Types::kLazyRange, T>;
    core().check_can_submit();
    chunksize = stream_chunksize(inputs, static_cast<std::size_t>(size()), chunksize);
    return fold_stream(
        Batches(core(), Function(f),
                &run_reduce_job<Function, typename Types::Item, Types::kLazyRange, Op, T>,
                call.retries, [&op, &init](JobBuilder& builder) { builder.reduction(op, init); }),
        inputs, chunksize, op, init);
  }

  void close() { core().close(); }
  void join() { core().join(); }
  void terminate() { core().terminate(); }

 private:
  // The result's cancel() reaches the posted job while the pool lives.
  void cancellable(AsyncStateBase& state, std::optional<std::uint64_t> position) {
    if (!position) return;
    state.set_canceller([core = core_.get(), alive = core_->lifetime(), at = *position](
                            Cancel how) { return !alive.expired() && core->cancel_call(at, how); });
  }

  std::unique_ptr<ProcessPoolCore> core_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_BACKEND_H_
