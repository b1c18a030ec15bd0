// The machinery behind ProcessPool, independent of any task type: it forks and replaces the
// workers, owns the shared memory (control block, job arena, per-worker result buffers), posts
// jobs, and drives the workers' sockets, SIGCHLD and SIGINT with one event loop.
//
// Nothing runs in the background in the parent: workers proceed on their own through shared
// memory, and the parent notices what they finished whenever a caller drives (waits on a result,
// submits work). Not thread-safe: one thread (the one that created the pool) makes every call.
//
// The event loop (Boost.Asio) is held by pointer and defined in event_loop.h, which only the .cc
// files include, so that including this header costs no Asio. The private members are defined in
// the .cc file named above each group; the public ones in core.cc, regions.cc (allocate_region),
// job_table.cc (post, cancel, release_record) and drive.cc (drive_until). A worker's own side is
// worker_main.h.
#ifndef POOL_DETAIL_PROCESS_CORE_H_
#define POOL_DETAIL_PROCESS_CORE_H_

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pool/async_result.h"
#include "pool/cpus.h"
#include "pool/detail/lifecycle.h"
#include "pool/detail/live_streams.h"
#include "pool/detail/process/arena.h"
#include "pool/detail/process/protocol.h"
#include "pool/detail/process/shared_segment.h"
#include "pool/detail/process/worker_context.h"
#include "pool/detail/task_failure.h"
#include "pool/detail/trace_session.h"
#include "pool/start_method.h"

namespace pool::detail {

class EventLoop;
class ForkserverConnection;
struct Message;

// Results are pulled from the workers' memory only for calls and chunks at least this large;
// below, shared memory is as cheap and needs no system call.
inline constexpr std::size_t kPullJobBytes = std::size_t{4} << 20;
inline constexpr std::size_t kPullChunkBytes = std::size_t{64} << 10;
// Pulled results pass through a buffer of this size on their way into the returned vector.
inline constexpr std::size_t kPullStagingBytes = std::size_t{256} << 10;

struct CoreOptions {
  std::optional<Start> start;  // unset: fork while one thread runs, else the forkserver
  bool allow_fork_with_threads = false;
  int retries = 0;  // times a chunk lost with its worker is run again, unless a call says
  bool capture_output = false;  // workers' lines prefixed and never mixed (output_capture.h)
  std::function<void()> initializer;
  std::uint64_t maxtasksperchild = 0;
  std::uint64_t max_memory_per_child = 0;  // bytes of resident memory; 0: no limit
  std::chrono::nanoseconds task_timeout{0};
  std::chrono::nanoseconds start_timeout{0};  // zero: none
  bool handle_interrupts = true;
  std::shared_ptr<Trace> trace;  // null: not traced
  CpuPinning pinning;            // off: workers run where the scheduler puts them
};

// Where a job whose lost chunks may be run again keeps what a retry needs, in its region: the
// chunks to run (one std::uint32_t per chunk), a completion log and a WorkerFailure per worker,
// reused by every retry of the job.
struct RetryPlan {
  int retries = 0;           // 0: a lost chunk fails the job
  std::uint64_t chunks = 0;  // the job's chunks, all of them
  std::uint64_t map_offset = 0;
  std::uint64_t log_offset = 0;
  std::uint64_t failure_offset = 0;
};

// Hears about one posted job, in the parent, while someone drives.
class JobListener {
 public:
  virtual ~JobListener() = default;
  // A chunk finished (jobs with a completion log only), in completion order; `error` is its
  // TaskError when its task threw. Results are readable until the job is settled.
  virtual void on_chunk(std::uint64_t /*chunk*/, const std::exception_ptr& /*error*/) {}
  // Called once: every chunk finished (error null; results readable during the call), or the job
  // failed or was cancelled (error set).
  virtual void on_settled(const std::exception_ptr& error) = 0;
  // No worker touches the job any more: no chunk will follow.
  virtual void on_retired() {}
};

class ProcessPoolCore final : public Driver {
 public:
  ProcessPoolCore(int workers, CoreOptions options);
  // Waits for every posted job, then stops the workers (close() + join()), unless terminated.
  ~ProcessPoolCore() override;
  ProcessPoolCore(const ProcessPoolCore&) = delete;
  ProcessPoolCore& operator=(const ProcessPoolCore&) = delete;

  // How the workers are started.
  Start start_method() const { return start_; }

  // Worker slots: the pool's size as asked for. Job layouts keep one entry per slot.
  int size() const { return static_cast<int>(workers_.size()); }
  // Slots that hold a worker (running or starting): fewer than size() while a dead worker's
  // replacement cannot be started.
  int running() const;

  // Throws PoolNotRunning after close()/terminate() (past `latest`), WorkerStartError or
  // InitializerError when no worker can run, std::logic_error from another process or thread or
  // from inside a callback.
  void check_can_submit(Lifecycle::State latest = Lifecycle::State::kOpen) const;

  // An arena region of `bytes` for a new job: waits for running jobs to free space, or grows the
  // arena once none run. Returns its offset. Throws PoolNotRunning past `latest`.
  std::uint64_t allocate_region(std::size_t bytes,
                                Lifecycle::State latest = Lifecycle::State::kOpen);
  std::byte* arena() const { return arena_.data(); }
  // Posts `job` (offsets already relative to the arena) whose parts lie in `region`. Returns its
  // position. Waits while kJobSlots jobs are still in flight. Throws PoolNotRunning past `latest`.
  // With a RetryPlan, chunks lost with a dead worker (a signal, an exit, a timeout) are run again
  // on the live workers, up to plan.retries times, before the job fails with the death.
  std::uint64_t post(const JobDescriptor& job, std::uint64_t region,
                     std::shared_ptr<JobListener> listener,
                     Lifecycle::State latest = Lifecycle::State::kOpen, RetryPlan retry = {});
  // How many times lost chunks are retried for a call that does not say.
  int default_retries() const { return options_.retries; }
  // Stops handing out the job's chunks; its listener is settled with PoolNotRunning unless it was.
  void cancel(std::uint64_t position);
  // AsyncResult::cancel: settles the job with CancelledError if no worker entered it, or, with
  // kill_running, also once they did, killing (and replacing) the workers inside it. A worker
  // that takes a chunk just as the job is cancelled may run that chunk; its results are dropped.
  bool cancel_call(std::uint64_t position, Cancel how);

  // Driver: runs until done() or the deadline. Throws Interrupted on SIGINT (after terminating).
  bool drive_until(const std::function<bool()>& done,
                   std::optional<Clock::time_point> deadline) override;

  // Trivially copyable results of large calls (kPullJobBytes, kPullChunkBytes) stay in the workers'
  // own memory and are pulled from there (pulled_results.h): not where the system forbids
  // process_vm_readv, nor when workers are recycled (they may leave before they are read).
  bool pulls_results() const { return pulls_results_; }
  // Workers leave after maxtasksperchild chunks, or when their memory grew beyond the limit.
  bool recycles_workers() const {
    return options_.maxtasksperchild != 0 || options_.max_memory_per_child != 0;
  }
  // Copies bytes [from, from + size) of a pulled chunk's results to `into`. Throws WorkerDied
  // when the worker that holds them has died.
  void pull(const ChunkRecord& record, std::uint64_t from, std::byte* into, std::size_t size);
  // A buffer of at least `bytes` aligned for `alignment`, reused by every pull so that it stays
  // warm; valid until the next call.
  std::byte* staging(std::size_t bytes, std::size_t alignment);
  // The parent is done with a chunk's record: the worker may reuse its memory.
  void release(ChunkRecord& record) {
    record.state = kRecordRead;
    release_record(record.worker);
  }

  // `size` bytes at `offset` of a worker's result buffer. Throws when outside the buffer.
  const std::byte* results_of(std::uint32_t worker, std::uint64_t offset, std::uint64_t size) const;
  // The parent has decoded one record of the worker's; the worker may reuse its buffer when all
  // are.
  void release_record(std::uint32_t worker);

  void close();
  void join();
  void terminate();
  // While alive, the pool has not been destroyed; streams check it before driving.
  std::weak_ptr<void> lifetime() const { return lifetime_; }
  // The streams open on the pool, which join() lets post the rest of their input.
  LiveStreams& live_streams() { return streams_; }

 private:
  struct Worker {
    pid_t pid = -1;
    bool alive = false;
    pid_t ended_pid = -1;  // the last worker of this slot that ended, and its wait status
    int ended_status = 0;
    bool timed_out = false;
    bool awaiting_arena_ack = false;
    // No worker: its replacement could not be started; tried again at next_try_ns.
    bool vacant = false;
    std::int64_t next_try_ns = 0;
    std::int64_t spawned_ns = 0;  // CLOCK_MONOTONIC, when forked
    bool starting = false;        // forked, not yet seen ready
    bool start_timed_out = false;
    std::exception_ptr stopped_because;  // the parent stopped it (protocol error, no memory)
    SharedSegment results;               // the worker's result buffer
    SharedSegment pending_results;       // a larger one being handed over
  };
  struct LiveJob {
    std::uint64_t position = 0;
    JobDescriptor job;
    std::uint64_t region = 0;  // 0 once freed
    std::shared_ptr<JobListener> listener;
    std::uint64_t logged = 0;  // completion log entries consumed
    bool settled = false;
    bool failed = false;  // cancelled by a death, a timeout or the caller
    RetryPlan retry;
    int attempt = 1;          // 2 and up: a retry of the chunks earlier attempts lost
    std::exception_ptr lost;  // a worker died in it: its chunks are run again once all left it
  };

  // spawn.cc
  // Starts the worker of slot `index` by the pool's start method; throws std::system_error when
  // the system refuses and std::logic_error when a fork would copy other threads (unless allowed).
  void spawn(std::uint32_t index);
  // The process of a worker that is not a fork, serving on `worker_end`; what it needs is sent
  // over the other end (send_bootstrap_to).
  pid_t start_unforked(int worker_end);
  // The bookkeeping of a worker just started, serving on `parent_end`.
  void started(std::uint32_t index, int parent_end, pid_t pid);
  void send_bootstrap_to(std::uint32_t index, int parent_end, std::int64_t startup_ns);
  // A worker's process, whoever its parent is (this process, or the forkserver).
  void kill_worker(pid_t pid);
  int reap_worker(pid_t pid, std::chrono::milliseconds grace);
  std::optional<int> try_reap_worker(pid_t pid);
  // spawn() for a replacement: a failure leaves the slot vacant, to be tried again with a
  // back-off, and breaks the pool when no worker is left after kMaxStartTries.
  void replace(std::uint32_t index);
  // Tries again every vacant slot whose back-off has passed.
  void retry_vacant_slots();
  void note_start_failure(std::uint32_t index, std::string cause);

  // timeouts.cc
  void check_timeouts();
  void check_start_timeouts();
  // When the next retry or start-up deadline is due, if any.
  std::optional<std::int64_t> next_start_event_ns() const;

  // worker_exit.cc
  // Stops a worker on purpose; its call fails with `why`.
  void stop_worker(std::uint32_t index, std::exception_ptr why);
  void on_exit(std::uint32_t index, int wait_status);

  // control_channel.cc
  // The event loop's handlers: a message (null at EOF) from the worker `pid` of slot `index`;
  // returns whether to read on. reap_exited() runs on SIGCHLD.
  bool on_message(std::uint32_t index, pid_t pid, const Message* message);
  void reap_exited();
  void handle_message(std::uint32_t index, const Message& message);
  void close_channel(std::uint32_t index);
  void reject(std::uint32_t index, const char* why);
  // Reads the initializer's outcome from the worker's slot; `dead_pid` when the worker ended.
  void note_startup(std::uint32_t index, pid_t dead_pid = -1);
  bool send(std::uint32_t index, const Message& message, int passed_fd = -1);
  void wake_workers();

  // regions.cc
  void grow_arena(std::size_t bytes);

  // job_table.cc
  void collect();
  void settle(LiveJob& job, std::exception_ptr error);
  // Hands out no more of the job's chunks and settles it with `error`.
  void stop_job(LiveJob& job, std::exception_ptr error);
  std::exception_ptr lowest_failure(LiveJob& job);
  // A TaskFailure a worker encoded in its result buffer.
  TaskFailure read_failure(std::uint32_t worker, std::uint64_t offset, std::uint64_t size) const;
  std::exception_ptr failure_of_chunk(LiveJob& job, std::uint64_t chunk);
  bool all_workers_past(std::uint64_t position);
  // The worker's job lost a chunk with it: run again later if the job may (`retryable`: the pool
  // did not stop the worker itself), else failed with `error` at once.
  void fail_job_of_worker(std::uint32_t index, std::exception_ptr error, bool retryable = false);
  // For a death's message: how many times the worker's job has lost chunks, when it is retried.
  std::string attempts_note(std::uint32_t index);
  // Sets up the next job slot for live.job and hands the job to the workers; returns its position.
  std::uint64_t publish(LiveJob live);
  // Posts the chunks of `job` that no attempt finished, as a job of their own taking over its
  // region and listener; false when no job slot is free yet.
  bool retry_lost_chunks(LiveJob& job);
  LiveJob* find_job(std::uint64_t position);
  void fail_everything(const std::exception_ptr& error);

  // core.cc
  void wait_for_startup();
  // The workers are stopped: every job's region is freed and its listener retired.
  void retire_all();
  void stop_workers(bool kill_now);
  void check_caller() const;

  pid_t owner_;
  std::thread::id owner_thread_;
  Start start_ = Start::fork;
  std::unique_ptr<ForkserverConnection> forkserver_;  // Start::forkserver only
  std::int64_t started_ns_;                           // CLOCK_MONOTONIC, at construction
  bool constructed_ = false;
  bool pulls_results_ = false;
  int start_failures_ = 0;  // failed starts since a worker last started
  std::string last_start_failure_;
  std::uint64_t oom_kills_seen_ = 0;  // the kernel's count, when a worker death last read it
  int starting_ = 0;                  // workers with `starting` set
  int vacant_ = 0;                    // slots with `vacant` set
  CoreOptions options_;
  Lifecycle lifecycle_;
  LiveStreams streams_;
  int driving_ = 0;            // nesting depth of drive_until; callbacks run inside it
  std::exception_ptr broken_;  // an initializer failed: nothing can run
  SharedSegment control_segment_;
  ControlBlock* control_ = nullptr;
  Arena arena_;
  int arena_acks_pending_ = 0;
  std::uint64_t posted_ = 0;
  std::deque<LiveJob> live_;  // positions [live_.front().position, posted_)
  // The workers' channels, SIGCHLD and SIGINT; destroyed after workers_.
  std::unique_ptr<EventLoop> loop_;
  std::vector<Worker> workers_;
  SharedSegment trace_segment_;  // the workers' trace buffers, when traced
  std::unique_ptr<TraceSession> trace_;
  std::shared_ptr<int> lifetime_ = std::make_shared<int>(0);
  // staging(): 64-byte blocks, so that any result type up to that alignment fits.
  struct alignas(64) StagingBlock {
    std::byte bytes[64];
  };
  std::vector<StagingBlock> staging_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_CORE_H_
