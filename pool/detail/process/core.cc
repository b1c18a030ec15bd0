#include "pool/detail/process/core.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "pool/detail/exception_text.h"
#include "pool/detail/memory_limits.h"
#include "pool/detail/output_capture.h"
#include "pool/detail/process/event_loop.h"
#include "pool/detail/process/forkserver.h"
#include "pool/detail/process/os.h"
#include "pool/detail/process/pulled_results.h"
#include "pool/errors.h"

namespace pool::detail {
namespace {

constexpr std::size_t kInitialArenaBytes = std::size_t{4} << 20;
constexpr std::size_t kInitialResultBytes = std::size_t{1} << 20;

}  // namespace

ProcessPoolCore::ProcessPoolCore(int workers, CoreOptions options)
    : owner_(::getpid()),
      owner_thread_(std::this_thread::get_id()),
      started_ns_(monotonic_now_ns()),
      options_(std::move(options)),
      loop_(std::make_unique<EventLoop>(
          [this](std::uint32_t index, pid_t pid, const Message* message) {
            return on_message(index, pid, message);
          },
          [this] { reap_exited(); })) {
  if (workers < 1) {
    throw std::invalid_argument("pool: a pool needs at least 1 worker, got " +
                                std::to_string(workers));
  }
  if (options_.task_timeout.count() < 0) {
    throw std::invalid_argument("pool: task_timeout must not be negative");
  }
  if (options_.start_timeout.count() < 0) {
    throw std::invalid_argument("pool: start_timeout must not be negative");
  }
  oom_kills_seen_ = oom_kill_count();
  const int threads = options_.allow_fork_with_threads ? 1 : settled_thread_count();
  start_ = options_.start.value_or(threads > 1 ? Start::forkserver : Start::fork);
  if (start_ == Start::fork && threads > 1) {
    throw std::logic_error(
        "pool: this process already runs " + std::to_string(threads) +
        " threads; fork() would copy their locked mutexes into the workers. Use Start::spawn or "
        "Start::forkserver (or leave ProcessPoolOptions::start unset), create the pool before "
        "starting threads, or set ProcessPoolOptions::allow_fork_with_threads if the threads "
        "hold no locks the tasks need");
  }
  if (start_ != Start::fork && options_.initializer &&
      options_.initializer.target<void (*)()>() == nullptr) {
    throw std::invalid_argument(
        "pool: with Start::" + std::string(to_string(start_)) +
        " the workers are new executions of the program, and the initializer must be a plain "
        "function (void(*)(); `+[] { ... }` makes one of a lambda without captures), not a " +
        demangle(options_.initializer.target_type().name()));
  }
  if (start_ == Start::forkserver) forkserver_ = std::make_unique<ForkserverConnection>();
  const auto count = static_cast<std::size_t>(workers);
  control_segment_ = SharedSegment::create(round_to_pages(ControlBlock::bytes_for(count)));
  control_ = new (control_segment_.data()) ControlBlock;
  control_->task_timeout_ns = options_.task_timeout.count();
  control_->max_chunks_per_worker = options_.maxtasksperchild;
  control_->max_resident_bytes = options_.max_memory_per_child;
  if (options_.capture_output) {
    control_->capture_output = 1;
    init_output_lock(&control_->output_lock);
  }
  control_->workers = count;
  for (std::size_t i = 0; i < count; ++i) new (control_->slots() + i) WorkerSlot;
  arena_ = Arena(SharedSegment::create(kInitialArenaBytes));
  workers_.resize(count);
  loop_->add_channels(count);
  for (auto& worker : workers_) worker.results = SharedSegment::create(kInitialResultBytes);
  if (options_.trace) {
    trace_segment_ =
        SharedSegment::create(round_to_pages(TraceSession::bytes_for(*options_.trace, workers)));
    trace_ = std::make_unique<TraceSession>(options_.trace, "process", workers, started_ns_,
                                            trace_segment_.data());
  }

  loop_->watch_children();
  try {
    for (std::uint32_t i = 0; i < count; ++i) spawn(i);
    if (options_.initializer) wait_for_startup();
    pulls_results_ = !recycles_workers() && options_.retries == 0 && workers_[0].alive &&
                     can_pull_from(workers_[0].pid);
    constructed_ = true;
  } catch (...) {
    stop_workers(true);  // the destructor will not run: reap the ones already forked
    throw;
  }
}

ProcessPoolCore::~ProcessPoolCore() {
  if (::getpid() != owner_) return;
  // Whoever destroys the pool has it to itself.
  owner_thread_ = std::this_thread::get_id();
  if (lifecycle_.state() < Lifecycle::State::kStopped && driving_ == 0) {
    try {
      close();
      join();
      return;
    } catch (...) {
      // Interrupted or broken while waiting: fall through and stop everything now.
    }
  }
  lifecycle_.terminate();
  stop_workers(true);
}

void ProcessPoolCore::wait_for_startup() {
  drive_until(
      [this] {
        if (broken_) return true;
        for (std::uint32_t i = 0; i < workers_.size(); ++i) {
          const std::uint32_t started =
              control_->slots()[i].started.load(std::memory_order_acquire);
          if (workers_[i].alive && started != kStarted) return false;
        }
        return true;
      },
      std::nullopt);
  if (broken_) std::rethrow_exception(broken_);
}

void ProcessPoolCore::stop_workers(bool kill_now) {
  if (trace_) trace_->shutdown_begins();
  // EOF on its socket tells an idle worker to exit; one stuck in a task is killed after a grace.
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    if (!workers_[i].alive) continue;
    if (kill_now) kill_worker(workers_[i].pid);
    close_channel(i);
  }
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    Worker& worker = workers_[i];
    if (worker.alive) {
      reap_worker(worker.pid, kill_now ? std::chrono::milliseconds(0) : kExitGrace);
      worker.alive = false;
      if (trace_) trace_->worker_ended(static_cast<int>(i), monotonic_now_ns());
    }
    worker.pending_results = SharedSegment();
  }
  if (trace_) trace_->finish();
}

int ProcessPoolCore::running() const { return static_cast<int>(workers_.size()) - vacant_; }

void ProcessPoolCore::check_caller() const {
  if (::getpid() != owner_) {
    throw std::logic_error("pool: a ProcessPool can only be used by the process that created it");
  }
  // The arena, the job table and the event loop belong to one thread; a second caller would
  // race on them.
  if (std::this_thread::get_id() != owner_thread_) {
    throw std::logic_error(
        "pool: a ProcessPool, its results and its streams are used only by the thread that "
        "created the pool; use one pool per thread, or a thread pool");
  }
}

void ProcessPoolCore::check_can_submit(Lifecycle::State latest) const {
  check_caller();
  if (driving_ > 0) {
    throw std::logic_error("pool: a callback cannot submit work to or wait on its ProcessPool");
  }
  if (broken_) std::rethrow_exception(broken_);
  if (lifecycle_.state() > latest) throw lifecycle_.not_running();
}

const std::byte* ProcessPoolCore::results_of(std::uint32_t worker, std::uint64_t offset,
                                             std::uint64_t size) const {
  if (worker >= workers_.size() || offset > workers_[worker].results.size() ||
      size > workers_[worker].results.size() - offset) {
    throw std::runtime_error("pool: a chunk's results lie outside its worker's result buffer");
  }
  return workers_[worker].results.data() + offset;
}

void ProcessPoolCore::close() { lifecycle_.close(); }

void ProcessPoolCore::join() {
  lifecycle_.check_can_join();
  if (lifecycle_.state() == Lifecycle::State::kClosed && !broken_) {
    streams_.post_rest();
    drive_until(
        [this] {
          return std::all_of(live_.begin(), live_.end(),
                             [](const LiveJob& j) { return j.settled; });
        },
        std::nullopt);
  }
  lifecycle_.stopped();  // no replacements from here on
  stop_workers(false);
  retire_all();
}

void ProcessPoolCore::terminate() {
  if (lifecycle_.state() >= Lifecycle::State::kStopped &&
      std::none_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.alive; })) {
    return;
  }
  lifecycle_.terminate();
  stop_workers(true);
  fail_everything(Lifecycle::terminated_before_done());
  retire_all();
}

void ProcessPoolCore::retire_all() {
  for (LiveJob& job : live_) {
    if (job.region != 0) arena_.free(job.region);
    job.region = 0;
    if (std::shared_ptr<JobListener> listener = std::move(job.listener)) listener->on_retired();
  }
  live_.clear();
}

}  // namespace pool::detail
