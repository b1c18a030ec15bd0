// Starting workers by the pool's start method (a fork; a new execution of the program; a fork of
// the forkserver, with what it needs sent over its socket), and replacements that are tried again
// with a back-off when they cannot be started.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "pool/detail/process/bootstrap.h"
#include "pool/detail/process/core.h"
#include "pool/detail/process/event_loop.h"
#include "pool/detail/process/forkserver.h"
#include "pool/detail/process/os.h"
#include "pool/detail/process/worker_main.h"
#include "pool/errors.h"

namespace pool::detail {
namespace {

// A replacement that cannot be started is tried again after 50 ms, then twice as long each time
// up to 1 s; with no worker left, the pool gives up after this many tries (about 3.5 s).
constexpr std::int64_t kFirstRetryNs = 50'000'000;
constexpr std::int64_t kLongestRetryNs = 1'000'000'000;
constexpr int kMaxStartTries = 8;

}  // namespace

void ProcessPoolCore::spawn(std::uint32_t index) {
  // The constructor checked already; threads started since would deadlock a worker the same way.
  if (start_ == Start::fork && constructed_ && !options_.allow_fork_with_threads) {
    const int threads = settled_thread_count();
    if (threads > 1) {
      throw std::logic_error("this process now runs " + std::to_string(threads) +
                             " threads, and fork() would copy their locked mutexes into a new "
                             "worker (stop them, or set "
                             "ProcessPoolOptions::allow_fork_with_threads)");
    }
  }
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::system_error(errno, std::generic_category(), "pool: socketpair for a worker");
  }
  WorkerSlot& slot = control_->slots()[index];
  slot.current_item.store(kNoItem, std::memory_order_relaxed);
  slot.item_started_ns.store(0, std::memory_order_relaxed);
  slot.sleeping.store(0, std::memory_order_relaxed);
  slot.started.store(kInitializing, std::memory_order_relaxed);
  // A replacement helps with every job still in flight.
  slot.position.store(live_.empty() ? posted_ : live_.front().position, std::memory_order_release);
  // The first workers' start-up is the pool's; a replacement's starts now.
  const bool first = workers_[index].pid < 0;
  const std::int64_t startup_ns = first ? started_ns_ : monotonic_now_ns();
  if (start_ != Start::fork) {
    pid_t pid = -1;
    try {
      pid = start_unforked(fds[1]);
    } catch (...) {
      ::close(fds[0]);
      ::close(fds[1]);
      throw;
    }
    ::close(fds[1]);
    remember_parent_end(fds[0]);
    // A worker gone already shows as EOF on its socket.
    send_bootstrap_to(index, fds[0], startup_ns);
    return started(index, fds[0], pid);
  }
  // Flushed now, or each worker would print the parent's buffered output again when it exits.
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::system_error(error, std::generic_category(), "pool: fork of a worker");
  }
  if (pid == 0) {
    ::close(fds[0]);
    close_parent_ends();
    // The worker dies with the parent, even when the parent is killed by SIGKILL.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != owner_) ::_exit(1);
    ::signal(SIGCHLD, SIG_DFL);
    // Ctrl-C reaches the whole process group; the parent decides what happens to workers.
    ::signal(SIGINT, SIG_IGN);
    // Not the parent's handler (a fork while it waits): SIGTERM ends a worker as it would any
    // process; the parent, which Slurm signals too, reports the call.
    ::signal(SIGTERM, SIG_DFL);
    WorkerSetup setup;
    setup.control = control_;
    setup.index = index;
    setup.fd = fds[1];
    setup.arena = arena_.data();
    setup.results = &workers_[index].results;
    setup.initializer = &options_.initializer;
    setup.pinning = &options_.pinning;
    setup.trace = trace_ ? trace_->buffer(static_cast<int>(index)) : nullptr;
    setup.startup_ns = startup_ns;
    worker_main(setup);
  }
  ::close(fds[1]);
  remember_parent_end(fds[0]);
  started(index, fds[0], pid);
}

void ProcessPoolCore::started(std::uint32_t index, int parent_end, pid_t pid) {
  Worker& worker = workers_[index];
  worker.pid = pid;
  worker.alive = true;
  worker.timed_out = false;
  worker.awaiting_arena_ack = false;
  worker.stopped_because = nullptr;
  worker.spawned_ns = monotonic_now_ns();
  worker.start_timed_out = false;
  if (!worker.starting) ++starting_;
  worker.starting = true;
  loop_->open(index, parent_end, pid);
}

pid_t ProcessPoolCore::start_unforked(int worker_end) {
  if (start_ == Start::spawn) return start_program(ProgramRole::kWorker, worker_end);
  return forkserver_->fork_worker(worker_end);
}

void ProcessPoolCore::send_bootstrap_to(std::uint32_t index, int parent_end,
                                        std::int64_t startup_ns) {
  Bootstrap bootstrap;
  bootstrap.index = index;
  bootstrap.startup_ns = startup_ns;
  if (options_.initializer) {
    bootstrap.initializer = encode_code_address(
        reinterpret_cast<const void*>(*options_.initializer.target<void (*)()>()));
  }
  bootstrap.cpus = options_.pinning.cpus();
  bootstrap.modules = loaded_modules();
  BootstrapSegments segments;
  segments.control = {control_segment_.fd(), control_segment_.size()};
  segments.arena = {arena_.segment().fd(), arena_.segment().size()};
  segments.results = {workers_[index].results.fd(), workers_[index].results.size()};
  if (trace_) {
    segments.trace = {trace_segment_.fd(), trace_segment_.size()};
    bootstrap.trace_offset = static_cast<std::uint64_t>(
        static_cast<const std::byte*>(trace_->buffer(static_cast<int>(index))->memory()) -
        trace_segment_.data());
  }
  send_bootstrap(parent_end, bootstrap, segments);
}

void ProcessPoolCore::kill_worker(pid_t pid) {
  if (forkserver_) {
    forkserver_->kill(pid, SIGKILL);
  } else {
    ::kill(pid, SIGKILL);
  }
}

int ProcessPoolCore::reap_worker(pid_t pid, std::chrono::milliseconds grace) {
  return forkserver_ ? forkserver_->reap(pid, grace) : reap(pid, grace);
}

std::optional<int> ProcessPoolCore::try_reap_worker(pid_t pid) {
  if (forkserver_) return forkserver_->try_reap(pid);
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == pid) return status;
  return std::nullopt;
}

void ProcessPoolCore::replace(std::uint32_t index) {
  try {
    spawn(index);
  } catch (const std::exception& error) {
    note_start_failure(index, error.what());
  }
}

void ProcessPoolCore::note_start_failure(std::uint32_t index, std::string cause) {
  Worker& worker = workers_[index];
  const std::int64_t now = monotonic_now_ns();
  ++start_failures_;
  last_start_failure_ = std::move(cause);
  if (!worker.vacant) ++vacant_;
  worker.vacant = true;
  const int doublings = std::min(start_failures_ - 1, 5);
  worker.next_try_ns = now + std::min(kFirstRetryNs << doublings, kLongestRetryNs);
  // Workers still running carry on (size() says how many); with none left, calls cannot finish.
  // A start-up that overran its bound, or a failure while the constructor runs, is not retried
  // then: it would only overrun again.
  if (broken_ || (constructed_ && running() > 0)) return;
  if (!constructed_ || start_failures_ >= kMaxStartTries || worker.start_timed_out) {
    broken_ = std::make_exception_ptr(WorkerStartError(last_start_failure_, start_failures_));
    fail_everything(broken_);
  }
}

void ProcessPoolCore::retry_vacant_slots() {
  if (vacant_ == 0 || broken_ || lifecycle_.state() >= Lifecycle::State::kStopped) return;
  const std::int64_t time = monotonic_now_ns();
  for (std::uint32_t i = 0; i < workers_.size() && !broken_; ++i) {
    Worker& worker = workers_[i];
    if (!worker.vacant || time < worker.next_try_ns) continue;
    worker.vacant = false;
    --vacant_;
    replace(i);
  }
}

}  // namespace pool::detail
