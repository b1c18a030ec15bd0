// The mechanism under pool::MpiPool: rank 0's core here, a worker rank's loop in worker.h, the
// messages in messages.h. mpi.h stays inside this folder's .cc files and private headers.
//
// Rank 0 hands out chunks: each worker rank holds at most kChunksPerRank of them (one running,
// the next already on its way), and a rank that answers gets the next chunk of the oldest call
// that has one. Worker ranks serve chunks until rank 0 finalizes MPI, through every pool the
// program creates one after the other, then finalize and exit. Messages:
//   rank 0 -> worker, kCommand: a call's runner and state (once per rank and call), a chunk, the
//                               end of a call, a request for the worker's clock, or stop;
//   worker -> rank 0, kReply then kPayload: a chunk's status, then its results or its failure;
//   worker -> rank 0, kClock: the worker's CLOCK_MONOTONIC, read as the request arrived;
//   worker -> rank 0, kDeath: the worker is dying of a signal while running a chunk.
// Tracing: a traced pool marks each chunk command traced; the worker then times the chunk on its
// own clock and sends the times after the reply's header (an untraced reply is the header alone).
// Rank 0 maps them onto its clock with each rank's offset, estimated when the pool starts by
// clock requests (see measure_clock_offsets in pool_core_tracing.cc). At the pool's end one more
// clock request to every rank tells rank 0 that the rank has handled every message of the pool.
// No rank spins while idle: waits poll with a backoff that ends in 1 ms sleeps.
#ifndef POOL_DETAIL_MPI_POOL_CORE_H_
#define POOL_DETAIL_MPI_POOL_CORE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pool/async_result.h"
#include "pool/detail/lifecycle.h"
#include "pool/detail/live_streams.h"
#include "pool/detail/mpi/call.h"
#include "pool/detail/mpi/job.h"
#include "pool/detail/trace_session.h"
#include "pool/trace.h"

namespace pool::detail {

// A chunk handed out to a worker rank and not yet answered.
struct MpiInFlight {
  std::shared_ptr<MpiJob> job;
  MpiChunk chunk;  // without its items
};

// A worker rank of the pool and its chunks, oldest first.
struct MpiRank {
  int rank = 0;
  std::deque<MpiInFlight> in_flight;
  Clock::time_point front_since{};  // when in_flight.front() became the chunk it runs
};

// A message being sent (defined where MPI is).
struct MpiSend;

namespace mpi {
struct ChunkTimes;
}  // namespace mpi

class MpiPoolCore final : public Driver {
 public:
  static constexpr std::size_t kChunksPerRank = 2;

  // Starts MPI when the program has not (and finalizes it at exit). On a worker rank this never
  // returns: it serves chunks until rank 0 finalizes MPI, then exits the process with status 0.
  // workers: how many worker ranks the pool uses, 0 for all of them. trace: record into it (one
  // row per worker rank), null for nothing; complete once the pool is joined, terminated or gone.
  // task_timeout: a worker rank that answers nothing for this long while it runs a chunk is taken
  // for lost (a hung task, a dead node, a cut link): rank 0 reports the lost chunks and aborts
  // the job, instead of waiting for ever. Zero: no bound.
  explicit MpiPoolCore(int workers, std::shared_ptr<Trace> trace = nullptr,
                       std::chrono::nanoseconds task_timeout = {});
  ~MpiPoolCore() override;
  MpiPoolCore(const MpiPoolCore&) = delete;
  MpiPoolCore& operator=(const MpiPoolCore&) = delete;

  // Starts MPI; on a worker rank, serves and exits. Returns on rank 0.
  static void start();
  static int rank();
  static int world_size();

  // Worker ranks in the pool; 1 when the job has one rank, which then runs the tasks itself.
  int size() const;
  bool local() const { return ranks_.empty(); }

  // Throws PoolNotRunning after close() or terminate() (past `latest`: a stream's batches are
  // accepted after close()).
  void check_can_submit(Lifecycle::State latest = Lifecycle::State::kOpen) const;
  void submit(std::shared_ptr<MpiJob> job, Lifecycle::State latest = Lifecycle::State::kOpen);
  // The streams open on the pool, which join() lets post the rest of their input.
  LiveStreams& live_streams() { return streams_; }
  // Stops handing out the job's chunks; its chunks in flight are still answered.
  bool drive_until(const std::function<bool()>& done,
                   std::optional<Clock::time_point> deadline) override;
  // Waits for the job's chunks in flight, dropping their results, and forgets the job.
  void abandon(const std::shared_ptr<MpiJob>& job);

  void close();
  void join();
  void terminate();

 private:
  // The oldest call's next chunk, and that call; null when no call has a chunk now.
  std::shared_ptr<MpiJob> next_chunk(MpiChunk& chunk);
  bool hand_out();
  bool run_locally();
  bool receive_replies();
  bool settle_finished();
  void send(int rank, const void* header, std::size_t header_size, const std::string& body);
  void test_sends();
  void wait_sends();
  void handle_death_notices();
  // Reports and aborts when a rank has run its chunk past task_timeout_.
  void check_silent_ranks();
  // Prints `why`, then the lost work, and aborts the MPI job.
  [[noreturn]] void abort_job(const std::string& why);
  [[noreturn]] void die_on_signal(int signal_number);
  std::string lost_work() const;
  // Tracing.
  void measure_clock_offsets();
  void record_chunk(int worker, const MpiJob& job, const MpiChunk& chunk,
                    const mpi::ChunkTimes& times);
  void end_trace();

  std::vector<MpiRank> ranks_;
  std::chrono::nanoseconds task_timeout_{0};
  std::list<std::shared_ptr<MpiJob>> jobs_;
  std::list<MpiSend> sends_;
  std::vector<std::byte> buffer_;
  // Local mode: each call's runner, built on its first chunk.
  std::vector<std::pair<const MpiJob*, MpiCall>> local_calls_;
  std::uint64_t next_job_id_ = 1;
  Lifecycle lifecycle_;
  LiveStreams streams_;
  // While traced: the rows (one per worker rank, or rank 0's own in a job of one rank), each
  // worker rank's clock minus rank 0's, and when each row was ready (rank 0's clock).
  std::unique_ptr<TraceSession> trace_;
  std::vector<std::int64_t> clock_offsets_;
  std::vector<std::int64_t> ready_ns_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_MPI_POOL_CORE_H_
