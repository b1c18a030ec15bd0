#include "pool/detail/threads/core.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "pool/detail/output_capture.h"
#include "pool/detail/task_failure.h"
#include "pool/detail/throw_site.h"
#include "pool/errors.h"

namespace pool::detail {

void ThreadJob::work() {
  for (;;) {
    const std::size_t chunk = next_.fetch_add(1, std::memory_order_relaxed);
    if (chunk >= chunks_) return;
    run_chunk(chunk);
    finish(1);
  }
}

void ThreadJob::work_traced(SpanRecorder& recorder) {
  // The overhead before each chunk (taking it, finishing the one before) and its run.
  recorder.start_overhead();
  for (;;) {
    const std::size_t chunk = next_.fetch_add(1, std::memory_order_relaxed);
    if (chunk >= chunks_) break;
    const auto [first_item, items] = items_of(chunk);
    recorder.set_chunk(id_, static_cast<std::int64_t>(chunk), first_item, items);
    recorder.run_begins();
    run_chunk(chunk);
    recorder.run_ends();
    finish(1);
  }
  recorder.idle();
}

void ThreadJob::cancel(std::exception_ptr reason) {
  std::size_t dropped = 0;
  {
    std::lock_guard<std::mutex> guard(reason_mutex_);
    // The cursor counts the chunks handed out so far; every later claim fails.
    const std::size_t handed_out = next_.exchange(kCancelled, std::memory_order_relaxed);
    if (handed_out < chunks_) {
      dropped = chunks_ - handed_out;
      if (!cancel_reason_) cancel_reason_ = std::move(reason);
    }
  }
  if (dropped > 0) finish(dropped);
}

bool ThreadJob::cancel_if_not_started(std::exception_ptr reason) {
  {
    std::lock_guard<std::mutex> guard(reason_mutex_);
    std::size_t untouched = 0;
    if (!next_.compare_exchange_strong(untouched, kCancelled, std::memory_order_relaxed)) {
      return false;
    }
    cancel_reason_ = std::move(reason);
  }
  finish(chunks_);
  return true;
}

std::exception_ptr ThreadJob::cancel_reason() const {
  std::lock_guard<std::mutex> guard(reason_mutex_);
  return cancel_reason_;
}

void ThreadJob::finish(std::size_t chunks) {
  // acq_rel: the settling thread sees every result the other chunks wrote.
  if (outstanding_.fetch_sub(chunks, std::memory_order_acq_rel) == chunks) settle();
}

ThreadPoolCore::ThreadPoolCore(int threads, std::unique_ptr<GilLock> gil,
                               std::function<void()> initializer, std::shared_ptr<Trace> trace,
                               CpuPinning pinning, bool capture_output)
    : size_(threads),
      started_ns_(monotonic_now_ns()),
      gil_(std::move(gil)),
      initializer_(std::move(initializer)),
      pinning_(std::move(pinning)),
      capture_output_(capture_output) {
  if (threads < 1) {
    throw std::invalid_argument("pool: a pool needs at least 1 worker, got " +
                                std::to_string(threads));
  }
  if (trace) {
    trace_ = std::make_unique<TraceSession>(std::move(trace), gil_ ? "gil" : "free", threads,
                                            started_ns_);
  }
  threads_.reserve(static_cast<std::size_t>(threads));
  try {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, i] { serve(i); });
      pinning_.pin(i, threads_.back());
    }
  } catch (...) {
    stop_threads();
    throw;
  }
  if (!initializer_) return;
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> guard(mutex_);
    started_cv_.wait(guard, [&] { return started_ == threads; });
    error = initializer_error_;
  }
  if (error) {
    stop_threads();
    const TaskFailure failure = TaskFailure::capture(0, error);
    throw InitializerError(failure.type, failure.message);
  }
}

ThreadPoolCore::~ThreadPoolCore() {
  close();
  join();
}

namespace {

// The pool whose thread this is: a task that submits to it would wait for itself.
thread_local const ThreadPoolCore* t_serving = nullptr;

void check_not_serving(const ThreadPoolCore* core) {
  if (t_serving == core) {
    throw std::logic_error(
        "pool: a task cannot submit work to the pool it runs on (it would wait for itself); "
        "make a pool of its own inside the task");
  }
}

}  // namespace

void ThreadPoolCore::check_can_submit() const {
  check_not_serving(this);
  std::lock_guard<std::mutex> guard(mutex_);
  lifecycle_.check_open();
}

void ThreadPoolCore::submit(std::shared_ptr<ThreadJob> job) {
  enqueue(std::move(job), Lifecycle::State::kOpen);
}

void ThreadPoolCore::submit_batch(std::shared_ptr<ThreadJob> job) {
  enqueue(std::move(job), Lifecycle::State::kClosed);
}

void ThreadPoolCore::enqueue(std::shared_ptr<ThreadJob> job, Lifecycle::State latest) {
  check_not_serving(this);
  const bool many = job->chunks() > 1;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (lifecycle_.state() > latest) throw lifecycle_.not_running();
    job->set_id(jobs_queued_++);
    queue_.push_back(std::move(job));
  }
  if (many) {
    work_ready_.notify_all();
  } else {
    work_ready_.notify_one();
  }
}

void ThreadPoolCore::close() {
  std::lock_guard<std::mutex> guard(mutex_);
  lifecycle_.close();
}

void ThreadPoolCore::join() {
  bool closed = false;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    lifecycle_.check_can_join();
    closed = lifecycle_.state() == Lifecycle::State::kClosed;
  }
  if (closed) streams_.post_rest();
  stop_threads();
}

void ThreadPoolCore::terminate() {
  std::deque<std::shared_ptr<ThreadJob>> dropped;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (lifecycle_.state() != Lifecycle::State::kStopped) lifecycle_.terminate();
    dropped.swap(queue_);
  }
  work_ready_.notify_all();
  if (!dropped.empty()) {
    const std::exception_ptr reason = Lifecycle::terminated_before_done();
    // Error callbacks run here; on a GIL pool they hold the lock like every other callback.
    const bool take_gil = gil_ != nullptr && GilLock::current() != gil_.get();
    if (take_gil) hold_gil();
    for (const auto& job : dropped) job->cancel(reason);
    if (take_gil) release_gil();
  }
  stop_threads();
}

void ThreadPoolCore::stop_threads() {
  if (trace_) trace_->shutdown_begins();
  {
    std::lock_guard<std::mutex> guard(mutex_);
    lifecycle_.stopped();
  }
  work_ready_.notify_all();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  if (trace_) trace_->finish();
}

void ThreadPoolCore::hold_gil() {
  gil_->acquire();
  GilLock::current() = gil_.get();
}

void ThreadPoolCore::release_gil() {
  GilLock::current() = nullptr;
  gil_->release();
}

void ThreadPoolCore::serve(int index) {
  record_throw_sites();
  t_serving = this;
  SpanRecorder recorder(trace_ ? trace_->buffer(index) : nullptr);
  TraceBuffer* trace = recorder.buffer();
  this_thread_recorder() = trace != nullptr ? &recorder : nullptr;
  if (capture_output_) {
    t_output_label = OutputLabel{index, -1, nullptr};
    t_output_trace = trace;
  }
  struct Stopped {
    TraceBuffer* trace;
    ~Stopped() {
      if (trace != nullptr) trace->mark_stopped();
      this_thread_recorder() = nullptr;
    }
  } stopped{trace};
  bool holding_gil = false;
  if (initializer_) {
    if (gil_) {
      hold_gil();
      holding_gil = true;
    }
    std::exception_ptr error;
    try {
      initializer_();
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> guard(mutex_);
      ++started_;
      if (error && !initializer_error_) initializer_error_ = error;
    }
    started_cv_.notify_all();
    if (error) {
      if (holding_gil) release_gil();
      return;
    }
  }
  if (trace != nullptr) {
    trace->record(TraceKind::kStartup, started_ns_, monotonic_now_ns(), -1, -1, -1, 0);
  }
  while (std::shared_ptr<ThreadJob> job = next_job(holding_gil)) {
    if (gil_ && !holding_gil) {
      const std::int64_t waiting_ns = trace != nullptr ? monotonic_now_ns() : 0;
      hold_gil();
      holding_gil = true;
      if (trace != nullptr) recorder.gil_wait(waiting_ns, job->id());
    }
    // Untraced threads run the same loop as in a build without tracing.
    if (trace != nullptr) {
      job->work_traced(recorder);
    } else {
      job->work();
    }
  }
  if (holding_gil) release_gil();
}

std::shared_ptr<ThreadJob> ThreadPoolCore::next_job(bool& holding_gil) {
  // Jobs leaving the queue may hold the last reference to the call's copies and callbacks: they
  // are destroyed after the mutex is released, not under it.
  std::vector<std::shared_ptr<ThreadJob>> finished;
  std::unique_lock<std::mutex> guard(mutex_);
  for (;;) {
    while (!queue_.empty() && queue_.front()->exhausted()) {
      finished.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    if (!queue_.empty()) return queue_.front();
    if (lifecycle_.state() >= Lifecycle::State::kStopped) return nullptr;
    if (holding_gil) {
      guard.unlock();
      release_gil();
      holding_gil = false;
      guard.lock();
      continue;
    }
    work_ready_.wait(guard);
  }
}

}  // namespace pool::detail
