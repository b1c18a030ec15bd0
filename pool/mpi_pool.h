// pool::MpiPool: the same map on the ranks of an MPI job, for work that outgrows one node.
//
//   int main() {
//     pool::MpiPool workers;  // on every rank but 0, serves tasks here and never returns
//     double sum = workers.map_reduce(term, pool::range(1, n + 1), std::plus<>(), 0.0);
//   }
//   $ mpirun -np 4 ./program        # or: srun --ntasks=4 --kill-on-bad-exit=1 ./program
//
// Contract
// - Rank 0 runs the program's main line and hands out chunks; the other ranks are the workers.
//   Every rank runs main up to the first MpiPool (or serve_workers()); there a worker rank serves
//   chunks of every pool the program creates, one after the other, until rank 0 finalizes MPI,
//   then finalizes and exits with status 0. Put nothing a worker rank should not do (printing,
//   reading a large input) before that point. A job of one rank runs the tasks on rank 0.
// - Chunks are handed out dynamically: each worker rank holds at most two chunks (one running,
//   the next on its way), and a rank that answers gets the next chunk, so fast ranks do more.
// - The task function, arguments and results cross the network: each must be trivially copyable
//   (sent as bytes) or cereal-serializable, as on a ProcessPool, and must not capture references
//   or pointers, which mean nothing on another rank. pool::SharedArray cannot be used: it lives on
//   one node. The function's code is found on the worker ranks by its type, registered when the
//   program starts: every rank must run the same executable.
// - Failures: a task that throws fails its call with TaskError (the lowest failing index) and the
//   pool stays usable. A rank that dies (a signal, exit(), the OOM killer) cannot be replaced in an
//   MPI job: rank 0 prints which chunks were lost with it and how far each call got, and the
//   job ends with a non-zero status (MPI_Abort, or SIGTERM from mpirun/srun), never a hang. Under
//   srun, pass --kill-on-bad-exit=1 so that Slurm ends the job as mpirun does.
// - MPI: MpiPool calls MPI_Init_thread (MPI_THREAD_FUNNELED) unless the program initialized MPI,
//   and then MPI_Finalize at exit. It talks on its own duplicate of MPI_COMM_WORLD. Open MPI starts
//   threads in MPI_Init, so create any ProcessPool before the first MpiPool.
// - One MpiPool at a time; use it from the thread that created it. terminate() cannot stop a task
//   running on another rank: it cancels what has not started and drops what is still running.
// - Tracing (MpiPoolOptions::trace, see pool/trace.h) records on rank 0, backend "mpi", one row
//   per worker rank: row w is rank w + 1 (in a job of one rank, one row: rank 0 running the
//   tasks). A chunk is overhead from when its rank received it until its first task began (its
//   items decoded), run until its last task ended, then overhead until its reply was sent (its
//   results encoded); job is the call, in submission order. A rank waiting for a chunk, or for a
//   large one to arrive, is idle. A row's start-up lasts from the pool's construction (MPI_Init
//   not included) until rank 0 measured that rank's clock; its shutdown from when the pool stops
//   (join() once every call is done, terminate(), or the destructor) until the rank answered its
//   last message of the pool.
//   Clocks: each rank times its chunks on its own CLOCK_MONOTONIC; rank 0 maps them onto its
//   clock with a per-rank offset measured when the pool starts (the fastest of a few
//   request/answer exchanges, NTP's estimate), which is off by at most half that round trip:
//   microseconds, and the very same clock on one node. Each span is also kept within what rank 0
//   knows (after the row's start-up, before the reply arrived), without changing the order in
//   which the rank ran them.
//   Cost: a traced pool's construction makes a few round trips per worker rank, one after the
//   other, and its end one more per rank; a traced chunk's reply carries 32 more bytes. An
//   untraced pool sends the same messages as before tracing existed, and its chunks run the same
//   code. A rank that dies ends the job, as above: the trace is never completed.
// - Built as the separate Bazel target //pool:mpi_pool (Open MPI: libopenmpi-dev); //pool needs
//   no MPI.
#ifndef POOL_MPI_POOL_H_
#define POOL_MPI_POOL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
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
#include "pool/detail/map_job.h"
#include "pool/detail/mpi_core.h"
#include "pool/detail/mpi_jobs.h"
#include "pool/detail/mpi_runner.h"
#include "pool/detail/serialization.h"
#include "pool/detail/transfer_checks.h"
#include "pool/range.h"
#include "pool/result_stream.h"
#include "pool/trace.h"

namespace pool {

struct MpiPoolOptions {
  // Draw a progress bar on stderr (rank 0) for every map, starmap, imap and map_reduce, counted
  // as chunks come back.
  bool progress = false;
  // Record a timeline of every worker rank into this trace, on rank 0 (see pool/trace.h and the
  // contract above); it is complete once the pool is joined, terminated or destroyed. Null:
  // nothing is recorded and nothing is paid.
  std::shared_ptr<Trace> trace;
};

class MpiPool {
 public:
  // Every worker rank of the job (mpirun -np N gives N - 1).
  MpiPool() : MpiPool(0) {}
  // The first `workers` worker ranks; 0 for all. Throws std::invalid_argument when the job has
  // fewer, std::logic_error while another MpiPool is alive or when options.trace recorded a pool.
  explicit MpiPool(int workers, MpiPoolOptions options = {})
      : core_(std::make_unique<detail::MpiPoolCore>(workers, std::move(options.trace))),
        progress_(options.progress) {}
  ~MpiPool() = default;
  MpiPool(MpiPool&&) noexcept = default;
  MpiPool& operator=(MpiPool&&) noexcept = default;

  // On a worker rank: serves tasks until rank 0 finalizes MPI, then exits. On rank 0: returns.
  // Call it first in main to keep worker ranks from running anything before the pool.
  static void serve_workers() { detail::MpiPoolCore::start(); }
  // This process's rank and the job's size (both start MPI when needed; see serve_workers()).
  static int rank() { return detail::MpiPoolCore::rank(); }
  static int world_size() { return detail::MpiPoolCore::world_size(); }

  // The number of worker ranks (1 in a job of one rank, where rank 0 runs the tasks).
  int size() const { return core_->size(); }

  // f applied to every item of inputs, in input order. chunksize 0: ceil(len / (4 * size())).
  template <class F, class Inputs>
  auto map(F&& f, const Inputs& inputs, std::size_t chunksize = 0) {
    return map_async(std::forward<F>(f), inputs, chunksize).get();
  }

  template <class F, class Inputs, class R = std::vector<MapResult<F, Inputs>>>
  AsyncResult<R> map_async(F&& f, const Inputs& inputs, std::size_t chunksize = 0,
                           typename AsyncResult<R>::Callback callback = {},
                           typename AsyncResult<R>::ErrorCallback error_callback = {}) {
    using Function = std::decay_t<F>;
    detail::check_map_call<Function, Inputs>();
    auto state = std::make_shared<detail::AsyncState<R>>(core_.get(), std::move(callback),
                                                         std::move(error_callback));
    submit_map<Function, typename R::value_type>(
        "map", progress_, static_cast<const Function&>(f), inputs, chunksize,
        [state](R&& results) { state->succeed(std::move(results)); },
        [state](std::exception_ptr error) { state->fail(std::move(error)); });
    return AsyncResult<R>(state);
  }

  // f(a, b, ...) for every tuple-like item (a, b, ...) of inputs, in input order.
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

  // f(args...) on a worker rank; R may be void.
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
  template <class F, class... T, class R = std::invoke_result_t<std::decay_t<F>&, T&...>>
  AsyncResult<R> apply_async(F&& f, Args<T...> arguments,
                             typename AsyncResult<R>::Callback callback = {},
                             typename AsyncResult<R>::ErrorCallback error_callback = {}) {
    using Function = detail::Starred<std::decay_t<F>>;
    using Value = std::conditional_t<std::is_void_v<R>, detail::Unit, R>;
    const std::vector<std::tuple<T...>> one{std::move(arguments.values)};
    detail::check_map_call<Function, std::vector<std::tuple<T...>>>();
    auto state = std::make_shared<detail::AsyncState<R>>(core_.get(), std::move(callback),
                                                         std::move(error_callback));
    submit_map<Function, Value>(
        "apply", false, Function{std::forward<F>(f)}, one, 1,
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
  // read a chunk at a time (an rvalue is kept by the stream).
  template <class F, class Inputs>
  ResultStream<StreamResult<F, Inputs>> imap(F&& f, Inputs&& inputs, std::size_t chunksize = 1) {
    return stream<true>("imap", std::forward<F>(f), std::forward<Inputs>(inputs), chunksize);
  }
  // (input index, result) pairs in the order they finish.
  template <class F, class Inputs>
  ResultStream<std::pair<std::size_t, StreamResult<F, Inputs>>> imap_unordered(
      F&& f, Inputs&& inputs, std::size_t chunksize = 1) {
    return stream<false>("imap_unordered", std::forward<F>(f), std::forward<Inputs>(inputs),
                         chunksize);
  }

  // op(...op(op(init, f(x0)), f(x1))..., f(xn)): each chunk folded on its rank from init, the
  // chunks' values folded on rank 0 in input order. init must be op's identity, op associative.
  template <class F, class Inputs, class Op, class T>
  T map_reduce(F&& f, Inputs&& inputs, Op op, T init, std::size_t chunksize = 0) {
    using Function = std::decay_t<F>;
    using Reader = detail::MpiChunkReader<Inputs>;
    using R = StreamResult<F, Inputs>;
    using Job = detail::MpiReduceJob<Inputs, T, Op>;
    using Runner =
        detail::MpiReduceRunner<Function, typename Reader::Item, Reader::kLazyRange, Op, T>;
    detail::check_stream_call<Function, Inputs>();
    static_assert(std::is_convertible_v<std::invoke_result_t<Op&, T, R>, T> &&
                      std::is_convertible_v<std::invoke_result_t<Op&, T, T>, T>,
                  "MpiPool::map_reduce: op must take (T, result) and (T, T) and return T");
    static_assert(detail::kTransferable<Op> && detail::kTransferable<T>,
                  "MpiPool::map_reduce: op and init travel to the worker ranks, so they must be "
                  "trivially copyable or cereal-serializable");
    core_->check_can_submit();
    if (chunksize == 0) {
      if constexpr (std::ranges::sized_range<std::views::all_t<Inputs>>) {
        chunksize = detail::default_chunksize(static_cast<std::size_t>(std::ranges::size(inputs)),
                                              static_cast<std::size_t>(size()));
      } else {
        chunksize = 1;
      }
    }
    std::string state = detail::StatePacker()
                            .add_encoded(detail::encode_task(static_cast<const Function&>(f)))
                            .add_encoded(detail::encode_task(op))
                            .add(init)
                            .take();
    auto job =
        std::make_shared<Job>("map_reduce", detail::mpi_runner_id<Runner>(), std::move(state),
                              std::forward<Inputs>(inputs), chunksize, window(), op, init);
    if (progress_) job->show_progress(job->total(), "map_reduce");
    core_->submit(job);
    return job->result(*core_);
  }

  // No more calls may be submitted; those submitted still run.
  void close() { core_->close(); }
  // Waits for every submitted call. close() or terminate() first.
  void join() { core_->join(); }
  // Cancels every call: chunks not started are dropped, running ones' results ignored.
  void terminate() { core_->terminate(); }

 private:
  // Chunks a streaming call may have out: enough to keep every rank busy.
  std::size_t window() const {
    return std::max<std::size_t>(8, 4 * static_cast<std::size_t>(size()));
  }

  template <class Function, class R, class Inputs, class Succeed, class Fail>
  void submit_map(const char* name, bool progress, const Function& f, const Inputs& inputs,
                  std::size_t chunksize, Succeed succeed, Fail fail) {
    using Reader = detail::MpiChunkReader<const Inputs&>;
    using Runner = detail::MpiMapRunner<Function, typename Reader::Item, Reader::kLazyRange>;
    core_->check_can_submit();
    const auto items = static_cast<std::size_t>(std::ranges::size(inputs));
    if (chunksize == 0)
      chunksize = detail::default_chunksize(items, static_cast<std::size_t>(size()));
    // Before the chunk list is made: an impossible size must not exhaust memory on the way.
    detail::check_mpi_map_sizes<R>(name, items, detail::chunk_count(items, chunksize));
    Reader reader(inputs, chunksize);
    std::deque<detail::MpiChunk> chunks;
    while (!reader.at_end()) reader.read(chunks.emplace_back());
    auto job = std::make_shared<detail::MpiMapJob<R>>(name, detail::mpi_runner_id<Runner>(),
                                                      detail::encode_task(f), std::move(chunks),
                                                      items, std::move(succeed), std::move(fail));
    if (progress) job->show_progress(items, name);
    core_->submit(std::move(job));
  }

  template <bool kOrdered, class F, class Inputs>
  auto stream(const char* name, F&& f, Inputs&& inputs, std::size_t chunksize) {
    using Function = std::decay_t<F>;
    using Reader = detail::MpiChunkReader<Inputs>;
    using Runner = detail::MpiMapRunner<Function, typename Reader::Item, Reader::kLazyRange>;
    using Job = detail::MpiStreamJob<Inputs, StreamResult<F, Inputs>, kOrdered>;
    detail::check_stream_call<Function, Inputs>();
    core_->check_can_submit();
    auto job = std::make_shared<Job>(name, detail::mpi_runner_id<Runner>(),
                                     detail::encode_task(static_cast<const Function&>(f)),
                                     std::forward<Inputs>(inputs), chunksize, window());
    if (progress_) job->show_progress(job->total(), name);
    core_->submit(job);
    return ResultStream<typename Job::Out>(
        std::make_unique<detail::MpiStreamSource<Job>>(*core_, std::move(job)));
  }

  std::unique_ptr<detail::MpiPoolCore> core_;
  bool progress_ = false;
};

}  // namespace pool

#endif  // POOL_MPI_POOL_H_
