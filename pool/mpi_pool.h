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

#include <chrono>
#include <memory>

#include "pool/basic_pool.h"
#include "pool/detail/mpi/backend.h"
#include "pool/trace.h"

namespace pool {

struct MpiPoolOptions {
  // Draw a progress bar on stderr (rank 0) for every map, starmap, imap and map_reduce, counted
  // as chunks come back.
  bool progress = false;
  // Record a timeline of every worker rank into this trace, on rank 0 (see pool/trace.h and the
  // contract above); it is complete once the pool is joined, terminated or destroyed. Null:
  // nothing is recorded and nothing is paid.
  std::shared_ptr<Trace> trace{};
  // A worker rank that answers nothing for this long while it runs a chunk (a hung task, a dead
  // node, a cut link) ends the job: rank 0 prints the chunks lost and calls MPI_Abort, rather
  // than waiting until TCP gives up. A lost rank cannot be replaced. Zero: no bound.
  std::chrono::nanoseconds task_timeout{0};
};

// The calls are BasicPool's (pool/basic_pool.h); the contract above says where they run.
class MpiPool : public BasicPool<detail::MpiBackend> {
 public:
  // Every worker rank of the job (mpirun -np N gives N - 1).
  MpiPool() : MpiPool(0) {}
  // The first `workers` worker ranks; 0 for all. Throws std::invalid_argument when the job has
  // fewer, std::logic_error while another MpiPool is alive or when options.trace recorded a pool.
  // size() is the number of worker ranks (1 in a job of one rank, where rank 0 runs the tasks).
  explicit MpiPool(int workers, MpiPoolOptions options = {})
      : BasicPool(detail::MpiBackend(std::make_unique<detail::MpiPoolCore>(
                      workers, std::move(options.trace), options.task_timeout)),
                  options.progress) {}

  // On a worker rank: serves tasks until rank 0 finalizes MPI, then exits. On rank 0: returns.
  // Call it first in main to keep worker ranks from running anything before the pool.
  static void serve_workers() { detail::MpiPoolCore::start(); }
  // This process's rank and the job's size (both start MPI when needed; see serve_workers()).
  static int rank() { return detail::MpiPoolCore::rank(); }
  static int world_size() { return detail::MpiPoolCore::world_size(); }
};

}  // namespace pool

#endif  // POOL_MPI_POOL_H_
