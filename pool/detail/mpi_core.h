// The mechanism under pool::MpiPool; mpi.h stays inside mpi_core.cc.
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
// clock requests (see measure_clock_offsets in mpi_core.cc). At the pool's end one more clock
// request to every rank tells rank 0 that the rank has handled every message of the pool.
// No rank spins while idle: waits poll with a backoff that ends in 1 ms sleeps.
#ifndef POOL_DETAIL_MPI_CORE_H_
#define POOL_DETAIL_MPI_CORE_H_

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pool/async_result.h"
#include "pool/detail/mpi_runner.h"
#include "pool/detail/task_failure.h"
#include "pool/detail/trace_session.h"
#include "pool/progress_bar.h"
#include "pool/trace.h"

namespace pool::detail {

// A chunk as rank 0 hands it out.
struct MpiChunk {
  std::uint64_t index = 0;      // within its call
  std::int64_t first_item = 0;  // index of its first item in the call's inputs
  std::uint64_t count = 0;
  std::int64_t range_first = 0;  // pool::range inputs: the value of the first item
  std::string items;             // other inputs: the encoded items (moved out when sent)
};

// A traced chunk's times on the clock of the rank that ran it (the reply's tail on the wire).
struct MpiChunkTimes {
  std::int64_t received_ns = 0;  // its command was received
  MpiRunTimes run;               // its first task began, its last task ended; 0: none ran
  std::int64_t reply_ns = 0;     // its reply is about to be sent
};

// One call (map, imap, map_reduce, apply) on rank 0.
class MpiJob {
 public:
  MpiJob(const char* name, std::uint64_t runner, std::string state)
      : name_(name), runner_(runner), state_(std::move(state)) {}
  virtual ~MpiJob() = default;
  MpiJob(const MpiJob&) = delete;
  MpiJob& operator=(const MpiJob&) = delete;

  const char* name() const { return name_; }
  std::uint64_t runner() const { return runner_; }
  const std::string& state() const { return state_; }

  // The next chunk to hand out; false when there is none now (inputs exhausted, a failure met, a
  // stream's window full).
  virtual bool next_chunk(MpiChunk& chunk) = 0;
  // True once next_chunk will never give another chunk.
  virtual bool exhausted() const = 0;
  // Where `bytes` of results for `chunk` may be received in place, or nullptr.
  virtual std::byte* destination(const MpiChunk& /*chunk*/, std::size_t /*bytes*/) {
    return nullptr;
  }
  // The chunk's results: in `payload`, or already at destination() when in_place.
  virtual void chunk_done(const MpiChunk& chunk, const std::byte* payload, std::size_t size,
                          bool in_place) = 0;
  virtual void chunk_failed(const MpiChunk& chunk, TaskFailure failure) = 0;
  // Every chunk handed out was answered and exhausted() holds.
  virtual void finish() = 0;
  // The pool was terminated: give out no more chunks, fail the call, drop late results.
  virtual void cancel(std::exception_ptr error) = 0;

  // A progress bar for the call: items done are counted as chunks come back.
  void show_progress(std::optional<std::uint64_t> total, const char* description);
  void count_done(std::uint64_t items);
  void end_progress();
  std::uint64_t items_done() const { return items_done_; }
  // The call's size when known, for reports.
  std::optional<std::uint64_t> total() const { return total_; }
  void set_total(std::optional<std::uint64_t> total) { total_ = total; }

 private:
  friend class MpiPoolCore;
  const char* name_;
  std::uint64_t runner_;
  std::string state_;
  std::uint64_t id_ = 0;         // set by the core
  std::size_t in_flight_ = 0;    // chunks handed out, not answered
  std::vector<int> ranks_told_;  // ranks that hold its runner
  std::uint64_t items_done_ = 0;
  std::optional<std::uint64_t> total_;
  std::unique_ptr<ProgressBar> bar_;
};

struct MpiRank;
struct MpiSend;

class MpiPoolCore final : public Progress {
 public:
  static constexpr std::size_t kChunksPerRank = 2;

  // Starts MPI when the program has not (and finalizes it at exit). On a worker rank this never
  // returns: it serves chunks until rank 0 finalizes MPI, then exits the process with status 0.
  // workers: how many worker ranks the pool uses, 0 for all of them. trace: record into it (one
  // row per worker rank), null for nothing; complete once the pool is joined, terminated or gone.
  explicit MpiPoolCore(int workers, std::shared_ptr<Trace> trace = nullptr);
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

  // Throws PoolNotRunning after close() or terminate().
  void check_can_submit() const;
  void submit(std::shared_ptr<MpiJob> job);
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
  [[noreturn]] void die_on_signal(int signal_number);
  std::string lost_work() const;
  // Tracing.
  void measure_clock_offsets();
  void record_chunk(int worker, const MpiJob& job, const MpiChunk& chunk,
                    const MpiChunkTimes& times);
  void end_trace();

  std::vector<MpiRank> ranks_;
  std::list<std::shared_ptr<MpiJob>> jobs_;
  std::list<MpiSend> sends_;
  std::vector<std::byte> buffer_;
  // Local mode: each call's runner, built on its first chunk.
  std::vector<std::pair<const MpiJob*, MpiCall>> local_calls_;
  std::uint64_t next_job_id_ = 1;
  bool closed_ = false;
  bool terminated_ = false;
  // While traced: the rows (one per worker rank, or rank 0's own in a job of one rank), each
  // worker rank's clock minus rank 0's, and when each row was ready (rank 0's clock).
  std::unique_ptr<TraceSession> trace_;
  std::vector<std::int64_t> clock_offsets_;
  std::vector<std::int64_t> ready_ns_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_MPI_CORE_H_
