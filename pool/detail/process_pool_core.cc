#include "pool/detail/process_pool_core.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/read.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "pool/detail/memory_limits.h"
#include "pool/detail/serialization.h"
#include "pool/detail/shared_block.h"
#include "pool/detail/task_failure.h"
#include "pool/errors.h"

namespace pool::detail {
namespace {

constexpr std::size_t kInitialArenaBytes = std::size_t{4} << 20;
constexpr std::size_t kInitialResultBytes = std::size_t{1} << 20;
// A worker asking for a larger result buffer than this is broken, not busy.
constexpr std::uint64_t kMaxResultBytes = std::uint64_t{1} << 40;
constexpr auto kExitGrace = std::chrono::milliseconds(2000);
// A replacement that cannot be started is tried again after 50 ms, then twice as long each time
// up to 1 s; with no worker left, the pool gives up after this many tries (about 3.5 s).
constexpr std::int64_t kFirstRetryNs = 50'000'000;
constexpr std::int64_t kLongestRetryNs = 1'000'000'000;
constexpr int kMaxStartTries = 8;

// The parent's ends of every pool's sockets in this process. A worker closes all of them right
// after fork: otherwise a worker of one pool would keep another pool's workers from seeing EOF.
std::vector<int>& parent_ends() {
  static std::vector<int> fds;
  return fds;
}

void forget_parent_end(int fd) {
  auto& fds = parent_ends();
  fds.erase(std::remove(fds.begin(), fds.end(), fd), fds.end());
}

std::size_t round_to_pages(std::size_t bytes) {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

int threads_in_this_process() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return 1;
}

// Threads of this process, once any thread that was just joined has left the list (the kernel
// tears a thread down a moment after join returns).
int settled_thread_count() {
  int threads = threads_in_this_process();
  for (int retry = 0; threads > 1 && retry < 20; ++retry) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    threads = threads_in_this_process();
  }
  return threads;
}

std::string seconds_text(std::chrono::nanoseconds duration) {
  std::ostringstream text;
  text << std::chrono::duration<double>(duration).count() << " s";
  return text.str();
}

// Reaps `pid`, giving it `grace` to exit on its own before SIGKILL. A pidfd becomes readable
// the moment the process exits, so the wait costs no polling delay.
int reap(pid_t pid, std::chrono::milliseconds grace) {
  int status = 0;
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd exited{pidfd, POLLIN, 0};
    int ready = 0;
    while ((ready = ::poll(&exited, 1, static_cast<int>(grace.count()))) < 0 && errno == EINTR) {
    }
    ::close(pidfd);
    if (ready == 0) ::kill(pid, SIGKILL);
  } else if (::waitpid(pid, &status, WNOHANG) == 0) {
    // No pidfd (kernel before 5.3): give it a moment, then stop it.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (::waitpid(pid, &status, WNOHANG) == 0)
      ::kill(pid, SIGKILL);
    else
      return status;
  } else {
    return status;
  }
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 0;  // not our child any more
  }
  return status;
}

bool sigint_is_default() {
  struct sigaction current {};
  return ::sigaction(SIGINT, nullptr, &current) == 0 && current.sa_handler == SIG_DFL &&
         (current.sa_flags & SA_SIGINFO) == 0;
}

std::exception_ptr not_running(const char* why) {
  return std::make_exception_ptr(PoolNotRunning(why));
}

}  // namespace

// Wakes the parent through the worker's socket, only when the parent said it sleeps.
class ProcessPoolCore::WorkerLink final : public ParentLink {
 public:
  WorkerLink(ControlBlock* control, std::uint32_t index, int fd)
      : control_(control), index_(index), fd_(fd) {}

  void notify(bool job_level_event) override {
    const std::uint32_t level = control_->parent_sleeping.load(std::memory_order_seq_cst);
    if (level == kParentAwake || (!job_level_event && level != kParentWaitsForWorkers)) return;
    if (control_->parent_sleeping.exchange(kParentAwake) != kParentAwake) {
      if (!write_message(fd_, make_message(MessageType::kProgress, index_))) ::_exit(0);
    }
  }

 private:
  ControlBlock* control_;
  std::uint32_t index_;
  int fd_;
};

ProcessPoolCore::ProcessPoolCore(int workers, CoreOptions options)
    : owner_(::getpid()),
      owner_thread_(std::this_thread::get_id()),
      started_ns_(monotonic_now_ns()),
      options_(std::move(options)),
      sigchld_(io_),
      interrupts_(io_) {
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
  if (!options_.allow_fork_with_threads) {
    const int threads = settled_thread_count();
    if (threads > 1) {
      throw std::logic_error(
          "pool: this process already runs " + std::to_string(threads) +
          " threads; fork() would copy their locked mutexes into the workers. Create the "
          "ProcessPool before starting threads, or set "
          "ProcessPoolOptions::allow_fork_with_threads if the threads hold no locks the tasks "
          "need");
    }
  }
  const auto count = static_cast<std::size_t>(workers);
  control_segment_ = SharedSegment::create(round_to_pages(ControlBlock::bytes_for(count)));
  control_ = new (control_segment_.data()) ControlBlock;
  control_->task_timeout_ns = options_.task_timeout.count();
  control_->max_chunks_per_worker = options_.maxtasksperchild;
  for (std::size_t i = 0; i < count; ++i) new (control_->slots() + i) WorkerSlot;
  arena_ = Arena(SharedSegment::create(kInitialArenaBytes));
  workers_.resize(count);
  for (auto& worker : workers_) worker.results = SharedSegment::create(kInitialResultBytes);
  if (options_.trace) {
    trace_segment_ =
        SharedSegment::create(round_to_pages(TraceSession::bytes_for(*options_.trace, workers)));
    trace_ = std::make_unique<TraceSession>(options_.trace, "process", workers, started_ns_,
                                            trace_segment_.data());
  }

  sigchld_.add(SIGCHLD);
  arm_sigchld();
  try {
    for (std::uint32_t i = 0; i < count; ++i) spawn(i);
    if (options_.initializer) wait_for_startup();
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
  if (state_ != State::kTerminated && driving_ == 0) {
    try {
      close();
      join();
      return;
    } catch (...) {
      // Interrupted or broken while waiting: fall through and stop everything now.
    }
  }
  state_ = State::kTerminated;
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
  for (auto& worker : workers_) {
    if (!worker.alive) continue;
    if (kill_now) ::kill(worker.pid, SIGKILL);
    close_channel(worker);
  }
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    Worker& worker = workers_[i];
    if (worker.alive) {
      reap(worker.pid, kill_now ? std::chrono::milliseconds(0) : kExitGrace);
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

void ProcessPoolCore::check_can_submit() const {
  check_caller();
  if (driving_ > 0) {
    throw std::logic_error("pool: a callback cannot submit work to or wait on its ProcessPool");
  }
  if (broken_) std::rethrow_exception(broken_);
  if (state_ == State::kClosed) throw PoolNotRunning("pool: the pool was closed");
  if (state_ == State::kTerminated) throw PoolNotRunning("pool: the pool was terminated");
}

void ProcessPoolCore::spawn(std::uint32_t index) {
  // The constructor checked already; threads started since would deadlock a worker the same way.
  if (constructed_ && !options_.allow_fork_with_threads) {
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
    for (int fd : parent_ends()) ::close(fd);
    // The worker dies with the parent, even when the parent is killed by SIGKILL.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != owner_) ::_exit(1);
    ::signal(SIGCHLD, SIG_DFL);
    // Ctrl-C reaches the whole process group; the parent decides what happens to workers.
    ::signal(SIGINT, SIG_IGN);
    serve(index, fds[1], startup_ns);
  }
  ::close(fds[1]);
  parent_ends().push_back(fds[0]);
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
  worker.channel = std::make_unique<boost::asio::posix::stream_descriptor>(io_, fds[0]);
  arm_read(index);
}

void ProcessPoolCore::serve(std::uint32_t index, int fd, std::int64_t startup_ns) {
  int exit_code = 0;
  TraceBuffer* trace = trace_ ? trace_->buffer(static_cast<int>(index)) : nullptr;
  try {
    WorkerSlot& me = control_->slots()[index];
    Worker& self = workers_[index];
    std::byte* arena = arena_.data();
    SharedSegment mapped_arena;  // the arena, once it was replaced after this fork
    ResultBuffer results(
        [&](std::size_t bytes) { grow_results_in_worker(index, fd, bytes, results); });
    // Records of a dead predecessor that the parent has not read yet stay where they are.
    const bool unread = me.records_produced.load() != me.records_consumed.load();
    results.reset(self.results.data(), self.results.size(), unread ? me.records_end.load() : 0);
    if (options_.initializer) {
      run_initializer(index, fd, results);
    } else {
      me.started.store(kStarted, std::memory_order_release);
    }
    SpanRecorder recorder(trace);
    if (trace != nullptr) {
      trace->record(TraceKind::kStartup, startup_ns, monotonic_now_ns(), -1, -1, -1, 0);
    }
    WorkerLink link(control_, index, fd);
    std::uint64_t chunks_left = control_->max_chunks_per_worker != 0
                                    ? control_->max_chunks_per_worker
                                    : std::numeric_limits<std::uint64_t>::max();
    std::uint64_t position = me.position.load(std::memory_order_acquire);
    Message message{};
    for (;;) {
      if (position < control_->posted.load(std::memory_order_acquire)) {
        JobSlot& job = control_->slot_of(position);
        WorkerContext context(control_, &job, index, arena, &results, &link, &chunks_left,
                              &recorder, position);
        std::uint64_t chunk = 0;
        recorder.start_overhead();
        if (context.next_chunk(chunk)) {
          job.job.runner(context, chunk);
          recorder.idle();
        }
        if (chunks_left == 0) break;  // maxtasksperchild: the parent starts a replacement
        me.position.store(++position, std::memory_order_seq_cst);
        // The parent may be waiting for every worker to leave a cancelled job.
        link.notify(job.cancelled.load(std::memory_order_seq_cst) != 0);
        continue;
      }
      me.sleeping.store(1, std::memory_order_seq_cst);
      if (position < control_->posted.load(std::memory_order_seq_cst)) {
        me.sleeping.store(0, std::memory_order_relaxed);  // a kWake may follow: it is harmless
        continue;
      }
      // Shared arrays destroyed since the worker last went idle or woke are unmapped here.
      release_dead_blocks();
      int passed = -1;
      if (!read_message(fd, message, &passed)) break;  // EOF: the pool is closing
      me.sleeping.store(0, std::memory_order_relaxed);
      release_dead_blocks();
      switch (message.type) {
        case MessageType::kWake:
          if (passed >= 0) ::_exit(3);
          break;
        case MessageType::kMapArena:
          if (passed < 0) ::_exit(3);
          mapped_arena = SharedSegment::adopt(passed, message.a);
          arena = mapped_arena.data();
          if (!write_message(fd, make_message(MessageType::kMapped, index))) ::_exit(0);
          break;
        default:
          ::_exit(3);
      }
    }
  } catch (...) {
    exit_code = 70;  // EX_SOFTWARE: the parent reports it as a dead worker
  }
  if (trace != nullptr) trace->mark_stopped();
  std::fflush(nullptr);
  ::_exit(exit_code);
}

void ProcessPoolCore::run_initializer(std::uint32_t index, int fd, ResultBuffer& results) {
  WorkerSlot& me = control_->slots()[index];
  try {
    options_.initializer();
  } catch (...) {
    const TaskFailure failure = TaskFailure::capture(-1, std::current_exception());
    std::ostream stream(&results);
    const std::size_t start = results.position();
    {
      cereal::BinaryOutputArchive archive(stream);
      archive(failure);
    }
    me.init_failure_offset = start;
    me.init_failure_size = results.position() - start;
    me.started.store(kInitializerFailed, std::memory_order_release);
    write_message(fd, make_message(MessageType::kInitFailed, index));
    std::fflush(nullptr);
    ::_exit(0);
  }
  me.started.store(kStarted, std::memory_order_release);
  if (!write_message(fd, make_message(MessageType::kReady, index))) ::_exit(0);
}

void ProcessPoolCore::grow_results_in_worker(std::uint32_t index, int fd, std::size_t bytes,
                                             ResultBuffer& buffer) {
  if (!write_message(fd, make_message(MessageType::kNeedSpill, index, 0, bytes))) ::_exit(0);
  Message reply{};
  int passed = -1;
  do {
    if (!read_message(fd, reply, &passed)) ::_exit(0);
  } while (reply.type == MessageType::kWake);  // a wake-up sent before the parent saw the request
  if (reply.type != MessageType::kMapSpill || reply.a < bytes || passed < 0) ::_exit(3);
  SharedSegment larger = SharedSegment::adopt(passed, reply.a);
  const std::size_t used = buffer.position();
  std::memcpy(larger.data(), workers_[index].results.data(), used);
  workers_[index].results = std::move(larger);
  buffer.reset(workers_[index].results.data(), workers_[index].results.size(), used);
  if (!write_message(fd, make_message(MessageType::kMapped, index))) ::_exit(0);
}

void ProcessPoolCore::arm_read(std::uint32_t index) {
  Worker& worker = workers_[index];
  boost::asio::async_read(
      *worker.channel, boost::asio::buffer(&worker.inbox, sizeof(Message)),
      [this, index, pid = worker.pid](const boost::system::error_code& error, std::size_t) {
        on_message(index, pid, error);
      });
}

void ProcessPoolCore::arm_sigchld() {
  sigchld_.async_wait([this](const boost::system::error_code& error, int) {
    if (error) return;
    for (std::uint32_t i = 0; i < workers_.size(); ++i) {
      Worker& worker = workers_[i];
      if (!worker.alive) continue;
      int status = 0;
      if (::waitpid(worker.pid, &status, WNOHANG) == worker.pid) on_exit(i, status);
    }
    arm_sigchld();
  });
}

void ProcessPoolCore::on_message(std::uint32_t index, pid_t pid,
                                 const boost::system::error_code& error) {
  Worker& worker = workers_[index];
  if (!worker.alive || worker.pid != pid) return;  // a closed channel of a reaped worker
  if (error) {
    // EOF: the worker is exiting; it is a zombie within moments.
    on_exit(index, reap(worker.pid, kExitGrace));
    return;
  }
  handle_message(index, worker.inbox);
  if (worker.alive && worker.pid == pid) arm_read(index);
}

void ProcessPoolCore::handle_message(std::uint32_t index, const Message& message) {
  Worker& worker = workers_[index];
  if (message.worker != index) return reject(index, "a message naming another worker");
  switch (message.type) {
    case MessageType::kProgress:
      return;  // waking the parent was the point
    case MessageType::kReady:
    case MessageType::kInitFailed:
      // The outcome is in the worker's slot; this only woke the parent.
      note_startup(index);
      return;
    case MessageType::kNeedSpill: {
      if (message.a > kMaxResultBytes || worker.pending_results.size() != 0) {
        return reject(index, "an impossible result-buffer request");
      }
      // Checked now: memory that runs out shows as an error naming it, and not as the OOM killer
      // once the worker writes its results.
      const std::string what = "the result buffer of worker process " + std::to_string(worker.pid);
      const std::uint64_t available = available_memory_bytes();
      std::size_t bytes =
          round_to_pages(std::max<std::size_t>(message.a, 2 * worker.results.size()));
      if (bytes > available) bytes = round_to_pages(message.a);
      try {
        check_memory_available(bytes, what + ", grown to hold its task's results,", available);
        worker.pending_results = SharedSegment::create(bytes);
      } catch (const OutOfMemory& error) {
        return stop_worker(index, std::make_exception_ptr(OutOfMemory(
                                      error.what() + std::string("; the worker was stopped"),
                                      error.requested_bytes(), error.limit_bytes())));
      } catch (...) {
        return stop_worker(index, std::current_exception());
      }
      send(index, make_message(MessageType::kMapSpill, index, 0, bytes),
           worker.pending_results.fd());
      return;
    }
    case MessageType::kMapped:
      if (worker.pending_results.size() != 0) {
        worker.results = std::move(worker.pending_results);
      } else if (worker.awaiting_arena_ack) {
        worker.awaiting_arena_ack = false;
        --arena_acks_pending_;
      } else {
        reject(index, "an unexpected acknowledgement");
      }
      return;
    default:
      return reject(index, "an unknown message type");
  }
}

void ProcessPoolCore::note_startup(std::uint32_t index, pid_t dead_pid) {
  const WorkerSlot& slot = control_->slots()[index];
  const std::uint32_t started = slot.started.load(std::memory_order_acquire);
  if (started == kStarted || broken_) return;
  if (started == kInitializing && dead_pid < 0) return;  // still running it
  if (started == kInitializerFailed) {
    const TaskFailure failure =
        read_failure(index, slot.init_failure_offset, slot.init_failure_size);
    broken_ = std::make_exception_ptr(InitializerError(failure.type, failure.message));
  } else {
    broken_ = std::make_exception_ptr(InitializerError(
        "a fatal signal or exit",
        "worker process " + std::to_string(dead_pid) + " ended while running the initializer"));
  }
  fail_everything(broken_);
}

void ProcessPoolCore::reject(std::uint32_t index, const char* why) {
  const std::string text = "pool: worker process " + std::to_string(workers_[index].pid) +
                           " sent " + why + " on its control channel; it was stopped and replaced";
  stop_worker(index, std::make_exception_ptr(std::runtime_error(text)));
}

void ProcessPoolCore::stop_worker(std::uint32_t index, std::exception_ptr why) {
  Worker& worker = workers_[index];
  worker.stopped_because = std::move(why);
  ::kill(worker.pid, SIGKILL);
  on_exit(index, reap(worker.pid, kExitGrace));
}

void ProcessPoolCore::on_exit(std::uint32_t index, int wait_status) {
  Worker& worker = workers_[index];
  if (!worker.alive) return;
  worker.alive = false;
  close_channel(worker);
  worker.pending_results = SharedSegment();
  if (worker.awaiting_arena_ack) {
    worker.awaiting_arena_ack = false;
    --arena_acks_pending_;
  }
  if (worker.starting) {
    worker.starting = false;
    --starting_;
  }
  if (state_ == State::kTerminated) return;
  if (worker.start_timed_out) {
    return note_start_failure(
        index, "worker process " + std::to_string(worker.pid) + " did not become ready within " +
                   seconds_text(options_.start_timeout) +
                   " of its start and was killed (a blocked initializer? a lock held by another "
                   "thread at fork?)");
  }
  const WorkerSlot& slot = control_->slots()[index];
  const std::int64_t item = slot.current_item.load(std::memory_order_relaxed);
  if (item != kNoItem || worker.timed_out || worker.stopped_because) {
    const std::int64_t task = item < 0 ? WorkerDied::kNoTask : item;
    std::exception_ptr error;
    if (worker.stopped_because) {
      error = worker.stopped_because;
    } else if (worker.timed_out) {
      error = std::make_exception_ptr(
          TaskTimeout(task, worker.pid, wait_status,
                      std::chrono::duration<double>(options_.task_timeout).count()));
    } else {
      std::string cause;
      if (WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL) {
        // Nobody in the pool sent it; if the OOM killer ran meanwhile, it is the likely sender.
        const std::uint64_t oom_kills = oom_kill_count();
        if (oom_kills > oom_kills_seen_) {
          cause =
              "the kernel's OOM killer ran meanwhile: the system or its memory cgroup ran out "
              "of memory";
        }
        oom_kills_seen_ = oom_kills;
      }
      error = std::make_exception_ptr(WorkerDied(task, worker.pid, wait_status, cause));
    }
    fail_job_of_worker(index, error);
  }
  // Otherwise it died between tasks (maxtasksperchild, or killed while idle): nothing was lost.
  if (options_.initializer &&
      control_->slots()[index].started.load(std::memory_order_acquire) != kStarted) {
    note_startup(index, worker.pid);
    return;
  }
  if (!broken_) replace(index);
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
  if (vacant_ == 0 || broken_ || state_ == State::kTerminated) return;
  const std::int64_t time = monotonic_now_ns();
  for (std::uint32_t i = 0; i < workers_.size() && !broken_; ++i) {
    Worker& worker = workers_[i];
    if (!worker.vacant || time < worker.next_try_ns) continue;
    worker.vacant = false;
    --vacant_;
    replace(i);
  }
}

void ProcessPoolCore::check_start_timeouts() {
  const std::int64_t now = monotonic_now_ns();
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    Worker& worker = workers_[i];
    if (!worker.starting || !worker.alive) continue;
    if (control_->slots()[i].started.load(std::memory_order_acquire) != kInitializing) {
      worker.starting = false;
      --starting_;
      start_failures_ = 0;
      continue;
    }
    if (options_.start_timeout.count() > 0 && !worker.start_timed_out &&
        now - worker.spawned_ns > options_.start_timeout.count()) {
      worker.start_timed_out = true;
      ::kill(worker.pid, SIGKILL);  // its EOF and SIGCHLD report it
    }
  }
}

std::optional<std::int64_t> ProcessPoolCore::next_start_event_ns() const {
  std::optional<std::int64_t> next;
  auto consider = [&next](std::int64_t at) { next = next ? std::min(*next, at) : at; };
  for (const Worker& worker : workers_) {
    if (worker.starting && worker.alive && options_.start_timeout.count() > 0) {
      // A millisecond late, so that check_start_timeouts finds it overdue.
      consider(worker.spawned_ns + options_.start_timeout.count() + 1'000'000);
    }
    if (worker.vacant && !live_.empty()) consider(worker.next_try_ns);
  }
  return next;
}

void ProcessPoolCore::close_channel(Worker& worker) {
  if (!worker.channel) return;
  forget_parent_end(worker.channel->native_handle());
  boost::system::error_code ignored;
  worker.channel->close(ignored);
}

bool ProcessPoolCore::send(std::uint32_t index, const Message& message, int passed_fd) {
  return write_message(workers_[index].channel->native_handle(), message, passed_fd);
}

void ProcessPoolCore::wake_workers() {
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    if (workers_[i].alive &&
        control_->slots()[i].sleeping.exchange(0, std::memory_order_seq_cst) != 0) {
      send(i, make_message(MessageType::kWake, i));  // a dead one shows up as EOF
    }
  }
}

std::uint64_t ProcessPoolCore::allocate_region(std::size_t bytes) {
  check_can_submit();
  for (;;) {
    if (std::optional<std::uint64_t> offset = arena_.allocate(bytes)) {
      try {
        arena_.check_memory(*offset, bytes);
      } catch (...) {
        arena_.free(*offset);
        throw;
      }
      return *offset;
    }
    const std::size_t before = arena_.regions();
    if (before == 0) {
      grow_arena(bytes);
      continue;
    }
    // Running jobs hold the space: wait until one finishes, then try again.
    drive_until([&] { return arena_.regions() < before || broken_ || state_ != State::kRunning; },
                std::nullopt);
    check_can_submit();
  }
}

void ProcessPoolCore::grow_arena(std::size_t bytes) {
  SharedSegment larger =
      SharedSegment::create(round_to_pages(std::max(Arena::space_for(bytes), 2 * arena_.size())));
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    if (!workers_[i].alive) continue;
    if (send(i, make_message(MessageType::kMapArena, i, 0, larger.size()), larger.fd())) {
      workers_[i].awaiting_arena_ack = true;
      ++arena_acks_pending_;
    }
  }
  drive_until([this] { return arena_acks_pending_ == 0; }, std::nullopt);
  // Workers forked from now on inherit the new mapping.
  arena_ = Arena(std::move(larger));
}

std::uint64_t ProcessPoolCore::post(const JobDescriptor& job, std::uint64_t region,
                                    std::shared_ptr<JobListener> listener) {
  if (!live_.empty() && posted_ - live_.front().position >= kJobSlots) {
    drive_until(
        [this] {
          return live_.empty() || posted_ - live_.front().position < kJobSlots ||
                 state_ == State::kTerminated || broken_;
        },
        std::nullopt);
  }
  try {
    check_can_submit();
  } catch (...) {
    arena_.free(region);
    throw;
  }
  std::byte* base = arena_.data();
  if (job.log_offset != 0)
    std::memset(base + job.log_offset, 0, job.n_chunks * sizeof(std::uint32_t));
  if (job.record_offset != 0)
    std::memset(base + job.record_offset, 0, job.n_chunks * sizeof(ChunkRecord));
  auto* failures = reinterpret_cast<WorkerFailure*>(base + job.failure_offset);
  for (std::size_t w = 0; w < workers_.size(); ++w) new (failures + w) WorkerFailure{{0}, 0, 0};

  const std::uint64_t position = posted_;
  JobSlot& slot = control_->slot_of(position);
  slot.job = job;
  slot.next_chunk.store(0, std::memory_order_relaxed);
  slot.log_cursor.store(0, std::memory_order_relaxed);
  slot.completed.store(0, std::memory_order_relaxed);
  slot.cancelled.store(0, std::memory_order_relaxed);
  LiveJob live;
  live.position = position;
  live.job = job;
  live.region = region;
  live.listener = std::move(listener);
  live_.push_back(std::move(live));
  control_->posted.store(++posted_, std::memory_order_seq_cst);
  wake_workers();
  retry_vacant_slots();
  return position;
}

ProcessPoolCore::LiveJob* ProcessPoolCore::find_job(std::uint64_t position) {
  if (live_.empty() || position < live_.front().position || position >= posted_) return nullptr;
  return &live_[position - live_.front().position];
}

void ProcessPoolCore::cancel(std::uint64_t position) {
  LiveJob* job = find_job(position);
  if (job == nullptr || job->settled) return;
  job->failed = true;
  control_->slot_of(position).cancelled.store(1, std::memory_order_seq_cst);
  settle(*job, not_running("pool: the call was cancelled"));
}

void ProcessPoolCore::fail_job_of_worker(std::uint32_t index, std::exception_ptr error) {
  const std::uint64_t position = control_->slots()[index].position.load(std::memory_order_acquire);
  LiveJob* job = find_job(position);
  if (job == nullptr || job->settled) return;
  JobSlot& slot = control_->slot_of(position);
  if (slot.completed.load(std::memory_order_acquire) == job->job.n_chunks) return;
  job->failed = true;
  slot.cancelled.store(1, std::memory_order_seq_cst);
  // Reported at once; the job's memory stays until the other workers have left it.
  settle(*job, std::move(error));
}

bool ProcessPoolCore::all_workers_past(std::uint64_t position) {
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    if (workers_[i].alive &&
        control_->slots()[i].position.load(std::memory_order_seq_cst) <= position) {
      return false;
    }
  }
  return true;
}

TaskFailure ProcessPoolCore::read_failure(std::uint32_t worker, std::uint64_t offset,
                                          std::uint64_t size) const {
  return Decoder<TaskFailure>(results_of(worker, offset, size), size).next();
}

std::exception_ptr ProcessPoolCore::failure_of_chunk(LiveJob& job, std::uint64_t chunk) {
  auto* failures = reinterpret_cast<WorkerFailure*>(arena_.data() + job.job.failure_offset);
  for (std::uint32_t w = 0; w < workers_.size(); ++w) {
    if (failures[w].chunk_plus_one.load(std::memory_order_acquire) != chunk + 1) continue;
    return std::make_exception_ptr(
        read_failure(w, failures[w].offset, failures[w].size).to_error());
  }
  return std::make_exception_ptr(std::runtime_error("pool: a failed chunk left no failure record"));
}

std::exception_ptr ProcessPoolCore::lowest_failure(LiveJob& job) {
  auto* failures = reinterpret_cast<WorkerFailure*>(arena_.data() + job.job.failure_offset);
  std::optional<TaskFailure> lowest;
  for (std::uint32_t w = 0; w < workers_.size(); ++w) {
    if (failures[w].chunk_plus_one.load(std::memory_order_acquire) == 0) continue;
    TaskFailure failure = read_failure(w, failures[w].offset, failures[w].size);
    if (!lowest || failure.index < lowest->index) lowest = std::move(failure);
  }
  return lowest ? std::make_exception_ptr(lowest->to_error()) : nullptr;
}

void ProcessPoolCore::settle(LiveJob& job, std::exception_ptr error) {
  if (job.settled) return;
  job.settled = true;
  // A copy: the listener may be dropped while it runs (terminate from a callback).
  std::shared_ptr<JobListener> listener = job.listener;
  if (listener) listener->on_settled(error);
}

void ProcessPoolCore::collect() {
  for (LiveJob& job : live_) {
    if (job.region == 0) continue;  // retired; waits for the workers to move past its slot
    JobSlot& slot = control_->slot_of(job.position);
    const std::uint64_t completed = slot.completed.load(std::memory_order_acquire);
    // Read before the log: a worker writes its entries before it moves past the job.
    const bool past = all_workers_past(job.position);
    // Chunks finished after a failure are still reported: a stream yields them before it.
    if (job.job.log_offset != 0) {
      auto* log = reinterpret_cast<std::atomic<std::uint32_t>*>(arena_.data() + job.job.log_offset);
      while (job.logged < job.job.n_chunks && job.listener) {
        const std::uint32_t entry = log[job.logged].load(std::memory_order_acquire);
        if (entry == 0) break;
        ++job.logged;
        const std::uint64_t chunk = (entry & ~kChunkFailedBit) - 1;
        const bool failed = (entry & kChunkFailedBit) != 0;
        job.listener->on_chunk(chunk, failed ? failure_of_chunk(job, chunk) : nullptr);
      }
    }
    const bool all_done = completed == job.job.n_chunks;
    if (!job.settled) {
      if (all_done) {
        settle(job, lowest_failure(job));
      } else if (slot.cancelled.load(std::memory_order_seq_cst) != 0 && past) {
        std::exception_ptr error = lowest_failure(job);
        settle(job, error ? error : not_running("pool: the call was cancelled"));
      }
    }
    if (job.settled && (all_done || past)) {
      // Records nobody decoded (a failed or cancelled call) are released with the job.
      if (job.job.record_offset != 0) {
        auto* records = reinterpret_cast<ChunkRecord*>(arena_.data() + job.job.record_offset);
        for (std::uint64_t c = 0; c < job.job.n_chunks; ++c) {
          if (records[c].state == kRecordWritten) release_record(records[c].worker);
        }
      }
      auto* failures = reinterpret_cast<WorkerFailure*>(arena_.data() + job.job.failure_offset);
      for (std::uint32_t w = 0; w < workers_.size(); ++w) {
        if (failures[w].chunk_plus_one.load(std::memory_order_acquire) != 0) release_record(w);
      }
      arena_.free(job.region);
      job.region = 0;
      if (std::shared_ptr<JobListener> listener = std::move(job.listener)) listener->on_retired();
    }
  }
  while (!live_.empty() && live_.front().region == 0 && all_workers_past(live_.front().position)) {
    live_.pop_front();
  }
}

void ProcessPoolCore::release_record(std::uint32_t worker) {
  control_->slots()[worker].records_consumed.fetch_add(1, std::memory_order_release);
}

void ProcessPoolCore::fail_everything(const std::exception_ptr& error) {
  for (LiveJob& job : live_) {
    if (job.settled) continue;
    job.failed = true;
    control_->slot_of(job.position).cancelled.store(1, std::memory_order_seq_cst);
    settle(job, error);
  }
}

void ProcessPoolCore::check_timeouts() {
  const std::int64_t now = WorkerContext::monotonic_ns();
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    Worker& worker = workers_[i];
    const WorkerSlot& slot = control_->slots()[i];
    if (!worker.alive || worker.timed_out) continue;
    if (slot.current_item.load(std::memory_order_relaxed) < 0) continue;
    const std::int64_t started = slot.item_started_ns.load(std::memory_order_relaxed);
    if (started != 0 && now - started > control_->task_timeout_ns) {
      worker.timed_out = true;
      ::kill(worker.pid, SIGKILL);  // its EOF and SIGCHLD report the death
    }
  }
}

bool ProcessPoolCore::drive_until(const std::function<bool()>& done,
                                  std::optional<Clock::time_point> deadline) {
  check_caller();
  if (driving_ > 0) {
    throw std::logic_error("pool: a callback cannot submit work to or wait on its ProcessPool");
  }
  struct Depth {
    int& depth;
    explicit Depth(int& d) : depth(d) { ++depth; }
    ~Depth() { --depth; }
  } depth(driving_);
  // Ctrl-C while the caller waits stops the workers and raises Interrupted; outside pool calls
  // SIGINT keeps its default action (workers then die with the parent). A program that installed
  // its own SIGINT handler keeps it.
  const bool catch_interrupts = options_.handle_interrupts && sigint_is_default();
  if (catch_interrupts) {
    interrupts_.add(SIGINT);
    interrupts_.async_wait([this](const boost::system::error_code& error, int signal_number) {
      if (!error) interrupted_ = signal_number;
    });
  }
  struct RemoveInterrupts {
    boost::asio::signal_set& set;
    bool active;
    ~RemoveInterrupts() {
      if (!active) return;
      boost::system::error_code ignored;
      set.cancel(ignored);
      set.remove(SIGINT, ignored);
    }
  } remove_interrupts{interrupts_, catch_interrupts};

  const bool timed = options_.task_timeout.count() > 0;
  const auto check_period = std::clamp<Clock::duration>(
      std::chrono::duration_cast<Clock::duration>(options_.task_timeout / 10),
      std::chrono::milliseconds(1), std::chrono::milliseconds(50));
  io_.restart();
  for (;;) {
    io_.poll();
    if (interrupted_ != 0) {
      const int signal_number = std::exchange(interrupted_, 0);
      terminate();
      throw Interrupted(signal_number);
    }
    if (timed) check_timeouts();
    if (starting_ > 0) check_start_timeouts();
    if (vacant_ > 0 && !live_.empty()) retry_vacant_slots();
    collect();
    if (done()) return true;
    run_wait_hook();
    if (deadline && Clock::now() >= *deadline) return false;
    bool waits_for_workers = !live_.empty() && posted_ - live_.front().position >= kJobSlots;
    for (const LiveJob& job : live_)
      waits_for_workers = waits_for_workers || job.failed || job.settled;
    control_->parent_sleeping.store(
        waits_for_workers ? kParentWaitsForWorkers : kParentWaitsForJobs,
        std::memory_order_seq_cst);
    collect();
    if (done()) {
      control_->parent_sleeping.store(kParentAwake, std::memory_order_relaxed);
      return true;
    }
    std::optional<Clock::duration> wait;
    if (deadline) wait = std::max<Clock::duration>(*deadline - Clock::now(), Clock::duration(0));
    if (timed && !live_.empty()) wait = wait ? std::min(*wait, check_period) : check_period;
    if (starting_ > 0 || vacant_ > 0) {
      if (const std::optional<std::int64_t> at = next_start_event_ns()) {
        const Clock::duration until =
            std::chrono::nanoseconds(std::max<std::int64_t>(*at - monotonic_now_ns(), 0));
        wait = wait ? std::min(*wait, until) : until;
      }
    }
    if (current_wait_hook != nullptr) {
      const Clock::duration period = kWaitHookPeriod;
      wait = wait ? std::min(*wait, period) : period;
    }
    io_.restart();
    if (wait) {
      io_.run_one_for(*wait);
    } else {
      io_.run_one();
    }
    control_->parent_sleeping.store(kParentAwake, std::memory_order_relaxed);
  }
}

const std::byte* ProcessPoolCore::results_of(std::uint32_t worker, std::uint64_t offset,
                                             std::uint64_t size) const {
  if (worker >= workers_.size() || offset > workers_[worker].results.size() ||
      size > workers_[worker].results.size() - offset) {
    throw std::runtime_error("pool: a chunk's results lie outside its worker's result buffer");
  }
  return workers_[worker].results.data() + offset;
}

void ProcessPoolCore::close() {
  if (state_ == State::kRunning) state_ = State::kClosed;
}

void ProcessPoolCore::join() {
  if (state_ == State::kRunning) {
    throw std::logic_error("pool: join() needs close() or terminate() first");
  }
  if (state_ == State::kClosed && !broken_) {
    drive_until(
        [this] {
          return std::all_of(live_.begin(), live_.end(),
                             [](const LiveJob& j) { return j.settled; });
        },
        std::nullopt);
  }
  state_ = State::kTerminated;  // no replacements from here on
  stop_workers(false);
  live_.clear();
}

void ProcessPoolCore::terminate() {
  if (state_ == State::kTerminated &&
      std::none_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.alive; })) {
    return;
  }
  state_ = State::kTerminated;
  stop_workers(true);
  fail_everything(not_running("pool: the pool was terminated before this result was ready"));
  for (LiveJob& job : live_) {
    if (job.region != 0) arena_.free(job.region);
    job.region = 0;
    if (std::shared_ptr<JobListener> listener = std::move(job.listener)) listener->on_retired();
  }
  live_.clear();
}

}  // namespace pool::detail
