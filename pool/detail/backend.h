// The backend contract: what a pool's machinery provides so that the one front end,
// pool::BasicPool (pool/basic_pool.h), offers every public call on it. A backend is a movable
// class; BasicPool calls it at compile time (a template parameter), so the seam costs no virtual
// call and no allocation. ProcessBackend (process/backend.h), ThreadBackend (threads/backend.h)
// and MpiBackend (mpi/backend.h) implement it; a new backend implements these members and is
// tested by instantiating tests/pool_contract.h for its pool.
//
// What the front end does, once for all: the compile-time checks and result types
// (call_checks.h, call_types.h), the AsyncState and its callbacks, apply as one call of a
// starred function, starmap as map of a starred function, the progress bar, and forwarding
// close/join/terminate. What a backend does: run chunks of a call somewhere (threads, processes,
// ranks), hand back their results in input order with the lowest failing task, stream them, and
// keep its own lifecycle.
//
//   // Tasks run in another address space: the function, items and results must travel (checked
//   // at compile time by the front end), and a progress bar counts items in shared memory.
//   static constexpr bool kTasksTravel;
//   // Tasks count their items for the progress bar (a counter in memory the workers share).
//   // When false, the backend draws progress itself from CallInfo::progress (MPI: by chunk).
//   static constexpr bool kCountsItems;
//
//   // Workers that run calls now (what size() tells the user).
//   int size() const;
//   // What waiting on this backend's results must run (its event loop), or null when results
//   // settle on their own (threads). Given to every AsyncState it settles.
//   Driver* driver();
//
//   // f over every item of a sized range, results in input order into `state` (succeed), or its
//   // lowest failing task, a lost worker, PoolNotRunning (fail). kBlocking: the caller waits on
//   // `state` before f and inputs go away, so both may be used in place. Throws (before anything
//   // runs) PoolNotRunning after close/terminate, std::length_error / OutOfMemory for sizes that
//   // cannot exist. chunksize 0: Python's default, ceil(len / (4 * workers)).
//   template <bool kBlocking, class R, class F, class Inputs>
//   void map(F&& f, const Inputs& inputs, std::size_t chunksize, CallInfo call,
//            std::shared_ptr<AsyncState<std::vector<R>>> state);
//   // f(args...) once, on the backend's own copies of args as rvalues (f is an Applied<F>).
//   template <bool kBlocking, class R, class F, class Tuple>
//   void apply(F&& f, Tuple args, CallInfo call, std::shared_ptr<AsyncState<R>> state);
//
//   // map and apply settle `state` so that its cancel() works: a backend calls
//   // state->set_canceller(...) once the call is posted (see AsyncStateBase::Canceller). Chunks
//   // lost with a worker are run again CallInfo::retries times where workers can be replaced.
//   // f over any input range as a stream: input order (kOrdered) or (index, result) pairs in
//   // completion order; bounded look-ahead; a failure thrown at its position after every
//   // earlier result; an input that throws ends the stream after the chunks before it; dropping
//   // the stream cancels what has not started. All of it is stream_engine.h: a backend gives it
//   // a Batches class that runs batches of chunks (its */stream_batches.h).
//   template <class Out, bool kOrdered, class F, class Inputs>
//   ResultStream<Out> stream(F&& f, Inputs&& inputs, std::size_t chunksize, CallInfo call);
//   // op(...op(init, f(x0))..., f(xn)): each chunk folded from init with op(T, R), the chunks'
//   // values folded in input order with op(T, T) (fold_stream in stream_engine.h). Blocks; f, op
//   // and inputs may be used in place.
//   template <class F, class Inputs, class Op, class T>
//   T map_reduce(F&& f, Inputs&& inputs, Op& op, T init, std::size_t chunksize, CallInfo call);
//
//   // Python's close(), join() and terminate(), with the same messages on every pool.
//   void close();
//   void join();
//   void terminate();
#ifndef POOL_DETAIL_BACKEND_H_
#define POOL_DETAIL_BACKEND_H_

#include <exception>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/async_result.h"
#include "pool/detail/call_adapters.h"

namespace pool::detail {

// How a backend that collects a call's results into a vector settles the call's state: map's
// with the whole vector; apply's (run as a map of its one argument tuple) with its one value.
template <class R>
auto succeed_with_all(std::shared_ptr<AsyncState<std::vector<R>>> state) {
  return
      [state = std::move(state)](std::vector<R>&& results) { state->succeed(std::move(results)); };
}
template <class R>
auto succeed_with_first(std::shared_ptr<AsyncState<R>> state) {
  return [state = std::move(state)](
             std::vector<std::conditional_t<std::is_void_v<R>, Unit, R>>&& results) {
    if constexpr (std::is_void_v<R>) {
      state->succeed();
    } else {
      state->succeed(std::move(results.front()));
    }
  };
}
inline auto fail_with(std::shared_ptr<AsyncStateBase> state) {
  return [state = std::move(state)](std::exception_ptr error) { state->fail(std::move(error)); };
}

// What a backend is told about a call besides its function and inputs.
struct CallInfo {
  const char* name = "map";  // the public call, for messages and progress bars
  bool progress = false;     // draw a bar (backends that count progress themselves)
  int retries = -1;          // times lost chunks are run again (pool::retrying); -1: the pool's
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_BACKEND_H_
