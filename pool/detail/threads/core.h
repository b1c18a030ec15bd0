// The threads behind GilThreadPool and FreeThreadPool, and the jobs they run.
//
// A job is one call's work cut into chunks (a map's chunks, an apply's single call, a batch of an
// imap). The core keeps a FIFO queue of jobs; an idle thread takes the next chunk of the oldest job
// that has chunks left, so several calls run at once and none starves. Each job hands out its
// chunks from its own atomic cursor, and the thread that finishes a job's last chunk settles it.
#ifndef POOL_DETAIL_THREADS_CORE_H_
#define POOL_DETAIL_THREADS_CORE_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "pool/cpus.h"
#include "pool/detail/gil_lock.h"
#include "pool/detail/lifecycle.h"
#include "pool/detail/live_streams.h"
#include "pool/detail/trace_session.h"
#include "pool/errors.h"

namespace pool::detail {

class ThreadJob {
 public:
  // chunks >= 1: a job without chunks would never settle (an empty call is one empty chunk).
  explicit ThreadJob(std::size_t chunks) : chunks_(chunks), outstanding_(chunks) {}
  virtual ~ThreadJob() = default;
  ThreadJob(const ThreadJob&) = delete;
  ThreadJob& operator=(const ThreadJob&) = delete;

  std::size_t chunks() const { return chunks_; }
  // True once every chunk was handed out (or dropped): a thread has nothing left to take here.
  bool exhausted() const { return next_.load(std::memory_order_relaxed) >= chunks_; }

  // Claims chunks one by one and runs them until none is left.
  void work();
  // work(), recording a span for each chunk.
  void work_traced(SpanRecorder& recorder);

  // The call's number in submission order, for traces; set by the pool when it queues the job.
  std::int64_t id() const { return id_; }
  void set_id(std::int64_t id) { id_ = id; }

  // Drops the chunks not handed out yet; the job settles once its running chunks are done (at once,
  // in this thread, if none runs). cancel_reason() is `reason` when chunks were dropped.
  // Idempotent.
  void cancel(std::exception_ptr reason);
  // Drops the whole job if no chunk was handed out yet, settling it with `reason`; else false.
  bool cancel_if_not_started(std::exception_ptr reason);

 protected:
  // Runs chunk `chunk` in [0, chunks()). Must not throw: task failures are the job's to record.
  virtual void run_chunk(std::size_t chunk) = 0;
  // Called exactly once, when no chunk runs and none is left: publishes the job's outcome.
  // The job must not touch its call's inputs or caller afterwards. Must not throw.
  virtual void settle() = 0;
  // Why chunks were dropped by cancel(), or null (no chunk dropped, or dropped without a reason).
  std::exception_ptr cancel_reason() const;
  // For traces: the input index of the chunk's first item and its item count.
  virtual std::pair<std::int64_t, std::uint64_t> items_of(std::size_t chunk) const {
    return {static_cast<std::int64_t>(chunk), 1};
  }

 private:
  // Far beyond any chunk count, so later claims never wrap back into range.
  static constexpr std::size_t kCancelled = static_cast<std::size_t>(-1) / 2;

  void finish(std::size_t chunks);

  const std::size_t chunks_;
  std::atomic<std::size_t> next_{0};
  // Chunks neither finished nor dropped; whoever takes it to zero settles the job.
  std::atomic<std::size_t> outstanding_;
  mutable std::mutex reason_mutex_;
  std::exception_ptr cancel_reason_;
  std::int64_t id_ = -1;
};

class ThreadPoolCore {
 public:
  // With a GilLock, a thread holds it while it runs task code and callbacks, as CPython threads
  // hold the GIL while they run Python code, and releases it while it waits for work.
  // initializer (may be empty) runs once in each thread before its first task; if it throws in
  // any thread, the constructor joins every thread and throws InitializerError.
  // Throws std::invalid_argument if threads < 1.
  // With a trace, every thread records its spans into it (see pool/trace.h).
  // With pinning on, thread i is bound to its CPU before anything else runs in it.
  ThreadPoolCore(int threads, std::unique_ptr<GilLock> gil, std::function<void()> initializer,
                 std::shared_ptr<Trace> trace = nullptr, CpuPinning pinning = {},
                 bool capture_output = false);
  // close() and join().
  ~ThreadPoolCore();
  ThreadPoolCore(const ThreadPoolCore&) = delete;
  ThreadPoolCore& operator=(const ThreadPoolCore&) = delete;

  int size() const { return size_; }
  GilLock* gil() const { return gil_.get(); }

  // Throws PoolNotRunning after close() or terminate(), std::logic_error in one of this pool's
  // threads (a task submitting to its own pool would wait for itself).
  void check_can_submit() const;
  // Queues a call's job; throws PoolNotRunning after close() or terminate().
  void submit(std::shared_ptr<ThreadJob> job);
  // Queues a further batch of a stream made before close(); throws PoolNotRunning once the threads
  // stop (join, terminate).
  void submit_batch(std::shared_ptr<ThreadJob> job);

  void close();
  // Waits for every queued job (live streams submit their rest first), then stops the threads.
  // std::logic_error unless close() or terminate() came first; a no-op once the threads stopped.
  void join();
  // Drops the jobs' chunks not started (their results fail with PoolNotRunning), waits for the
  // running chunks, stops the threads.
  void terminate();

  // The streams open on the pool, which join() lets post the rest of their input.
  LiveStreams& live_streams() { return streams_; }

 private:
  void serve(int index);
  // The oldest job with chunks left, or null when the threads are to stop. Releases the GIL
  // (holding_gil) before it waits, as CPython releases the GIL on a blocking queue get.
  std::shared_ptr<ThreadJob> next_job(bool& holding_gil);
  void enqueue(std::shared_ptr<ThreadJob> job, Lifecycle::State latest);
  void stop_threads();
  void hold_gil();
  void release_gil();

  const int size_;
  const std::int64_t started_ns_;  // CLOCK_MONOTONIC, at construction
  std::unique_ptr<TraceSession> trace_;
  std::int64_t jobs_queued_ = 0;  // under mutex_
  std::unique_ptr<GilLock> gil_;
  std::function<void()> initializer_;
  CpuPinning pinning_;
  bool capture_output_;

  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::deque<std::shared_ptr<ThreadJob>> queue_;
  Lifecycle lifecycle_;
  LiveStreams streams_;
  // Startup: threads that ran their initializer, and the first initializer failure.
  std::condition_variable started_cv_;
  int started_ = 0;
  std::exception_ptr initializer_error_;

  std::vector<std::thread> threads_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_THREADS_CORE_H_
