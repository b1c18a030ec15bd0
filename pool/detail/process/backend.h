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
#include "pool/detail/process/stream_calls.h"
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
  void map(F&& f, const Inputs& inputs, std::size_t chunksize, CallInfo,
           const std::shared_ptr<AsyncState<std::vector<R>>>& state) {
    post_map<std::decay_t<F>, Inputs, R>(core(), f, inputs, chunksize, succeed_with_all(state),
                                         fail_with(state));
  }

  // A map of one item: the arguments' tuple.
  template <bool kBlocking, class R, class F, class Tuple>
  void apply(F&& f, Tuple arguments, const std::shared_ptr<AsyncState<R>>& state) {
    using Value = std::conditional_t<std::is_void_v<R>, Unit, R>;
    const std::vector<Tuple> one{std::move(arguments)};
    post_map<std::decay_t<F>, std::vector<Tuple>, Value>(
        core(), f, one, 1, succeed_with_first(state), fail_with(state));
  }

  template <class Out, bool kOrdered, class F, class Inputs>
  ResultStream<Out> stream(F&& f, Inputs&& inputs, std::size_t chunksize, CallInfo) {
    using Function = std::decay_t<F>;
    using R = ItemResult<F, std::remove_reference_t<Inputs>>;
    using Feeder = BatchFeeder<Function, Inputs, R>;
    core().check_can_submit();
    auto feeder = std::make_unique<Feeder>(
        core(), Function(std::forward<F>(f)), std::forward<Inputs>(inputs), chunksize, false,
        nullptr, &run_map_job<Function, typename Feeder::Item, Feeder::kLazyRange>);
    if constexpr (kOrdered) {
      return ResultStream<Out>(std::make_unique<OrderedSource<Feeder, R>>(std::move(feeder)));
    } else {
      return ResultStream<Out>(std::make_unique<UnorderedSource<Feeder, R>>(std::move(feeder)));
    }
  }

  template <class F, class Inputs, class Op, class T>
  T map_reduce(F& f, Inputs&& inputs, Op& op, T init, std::size_t chunksize, CallInfo) {
    using Function = std::decay_t<F>;
    using Feeder = BatchFeeder<Function, Inputs, T>;
    core().check_can_submit();
    chunksize = stream_chunksize(inputs, static_cast<std::size_t>(size()), chunksize);
    auto feeder = std::make_unique<Feeder>(
        core(), Function(f), std::forward<Inputs>(inputs), chunksize, true,
        [&op, &init](JobBuilder& builder) { builder.reduction(op, init); },
        &run_reduce_job<Function, typename Feeder::Item, Feeder::kLazyRange, Op, T>);
    OrderedSource<Feeder, T> partials(std::move(feeder));
    T total = init;
    std::vector<T> batch;
    while (partials.next_batch(batch)) {
      for (T& partial : batch) total = op(std::move(total), std::move(partial));
      batch.clear();
    }
    return total;
  }

  void close() { core().close(); }
  void join() { core().join(); }
  void terminate() { core().terminate(); }

 private:
  std::unique_ptr<ProcessPoolCore> core_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_BACKEND_H_
