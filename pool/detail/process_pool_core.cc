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
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "pool/detail/serialization.h"
#include "pool/detail/task_failure.h"
#include "pool/errors.h"

namespace pool::detail {
namespace {

constexpr std::size_t kInitialArenaBytes = std::size_t{4} << 20;
constexpr std::size_t kInitialResultBytes = std::size_t{1} << 20;
// A worker asking for a larger result buffer than this is broken, not busy.
constexpr std::uint64_t kMaxResultBytes = std::uint64_t{1} << 40;
constexpr auto kExitGrace = std::chrono::milliseconds(2000);

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

}  // namespace

ProcessPoolCore::ProcessPoolCore(int workers, bool allow_fork_with_threads)
    : owner_(::getpid()), sigchld_(io_) {
  if (workers < 1) {
    throw std::invalid_argument("pool: a pool needs at least 1 worker, got " +
                                std::to_string(workers));
  }
  if (!allow_fork_with_threads) {
    int threads = threads_in_this_process();
    // A thread that was just joined can stay listed for a moment while the kernel tears it down.
    for (int retry = 0; threads > 1 && retry < 20; ++retry) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      threads = threads_in_this_process();
    }
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
  control_segment_ = SharedSegment::anonymous(round_to_pages(ControlBlock::bytes_for(count)));
  control_ = new (control_segment_.data()) ControlBlock;
  for (std::size_t i = 0; i < count; ++i) new (control_->slots() + i) WorkerSlot;
  arena_ = SharedSegment::anonymous(kInitialArenaBytes);
  workers_.resize(count);
  for (auto& worker : workers_) worker.results = SharedSegment::anonymous(kInitialResultBytes);

  sigchld_.add(SIGCHLD);
  arm_sigchld();
  try {
    for (std::uint32_t i = 0; i < count; ++i) spawn(i);
  } catch (...) {
    stop_workers();  // the destructor will not run: reap the ones already forked
    throw;
  }
}

ProcessPoolCore::~ProcessPoolCore() {
  if (::getpid() != owner_) return;
  stop_workers();
}

void ProcessPoolCore::stop_workers() {
  // EOF on its socket tells an idle worker to exit; one stuck in a task is killed after a grace.
  for (auto& worker : workers_) {
    if (worker.alive) close_channel(worker);
  }
  for (auto& worker : workers_) {
    if (worker.alive) {
      reap(worker.pid, kExitGrace);
      worker.alive = false;
    }
  }
}

void ProcessPoolCore::spawn(std::uint32_t index) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::system_error(errno, std::generic_category(), "pool: socketpair for a worker");
  }
  control_->slots()[index].current_item.store(-1, std::memory_order_relaxed);
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
    serve(index, fds[1]);
  }
  ::close(fds[1]);
  parent_ends().push_back(fds[0]);
  Worker& worker = workers_[index];
  worker.pid = pid;
  worker.alive = true;
  worker.busy = false;
  worker.awaiting_arena_ack = false;
  worker.channel = std::make_unique<boost::asio::posix::stream_descriptor>(io_, fds[0]);
  arm_read(index);
}

void ProcessPoolCore::respawn_dead() {
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    if (!workers_[i].alive) spawn(i);
  }
}

void ProcessPoolCore::serve(std::uint32_t index, int fd) {
  int exit_code = 0;
  try {
    WorkerSlot& slot = control_->slots()[index];
    Worker& self = workers_[index];
    ResultBuffer results(
        [&](std::size_t bytes) { grow_results_in_worker(index, fd, bytes, results); });
    auto fail = [&](std::int64_t item, std::exception_ptr error) {
      const TaskFailure failure = TaskFailure::capture(item, std::move(error));
      std::ostream stream(&results);
      const std::size_t start = results.position();
      {
        cereal::BinaryOutputArchive archive(stream);
        archive(failure);
      }
      write_message(
          fd, make_message(MessageType::kTaskFailed, index, 0, start, results.position() - start));
    };
    Message message{};
    while (read_message(fd, message)) {
      switch (message.type) {
        case MessageType::kRunJob: {
          const std::uint64_t seq = control_->job_seq.load(std::memory_order_acquire);
          results.reset(self.results.data(), self.results.size(), 0);
          WorkerContext context(control_, index, arena_.data(), &results, fail);
          control_->job.runner(context);
          slot.current_item.store(-1, std::memory_order_relaxed);
          if (!write_message(fd, make_message(MessageType::kJobDone, index, seq))) ::_exit(0);
          break;
        }
        case MessageType::kMapArena:
          arena_ = SharedSegment::open_named(message.name, message.a);
          if (!write_message(fd, make_message(MessageType::kMapped, index))) ::_exit(0);
          break;
        default:
          ::_exit(3);
      }
    }
  } catch (...) {
    exit_code = 70;  // EX_SOFTWARE: the parent reports it as a dead worker
  }
  std::fflush(nullptr);
  ::_exit(exit_code);
}

void ProcessPoolCore::grow_results_in_worker(std::uint32_t index, int fd, std::size_t bytes,
                                             ResultBuffer& buffer) {
  if (!write_message(fd, make_message(MessageType::kNeedSpill, index, 0, bytes))) ::_exit(0);
  Message reply{};
  if (!read_message(fd, reply)) ::_exit(0);
  if (reply.type != MessageType::kMapSpill || reply.a < bytes) ::_exit(3);
  SharedSegment larger = SharedSegment::open_named(reply.name, reply.a);
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
  if (worker.alive) arm_read(index);
}

void ProcessPoolCore::handle_message(std::uint32_t index, const Message& message) {
  Worker& worker = workers_[index];
  if (message.worker != index) return reject(index, "a message naming another worker");
  switch (message.type) {
    case MessageType::kJobDone:
      if (message.seq != seq_) return reject(index, "a completion for another job");
      worker.busy = false;
      return;
    case MessageType::kTaskFailed:
      if (message.a > worker.results.size() || message.b > worker.results.size() - message.a) {
        return reject(index, "a failure record outside its result buffer");
      }
      worker.failures.emplace_back(message.a, message.b);
      control_->cancelled.store(1, std::memory_order_relaxed);
      return;
    case MessageType::kNeedSpill: {
      if (message.a > kMaxResultBytes || worker.pending_results.size() != 0) {
        return reject(index, "an impossible result-buffer request");
      }
      const std::size_t bytes =
          round_to_pages(std::max<std::size_t>(message.a, 2 * worker.results.size()));
      worker.pending_results = SharedSegment::create_named(bytes);
      send(index, make_message(MessageType::kMapSpill, index, 0, bytes, 0,
                               worker.pending_results.name().c_str()));
      return;
    }
    case MessageType::kMapped:
      if (worker.pending_results.size() != 0) {
        worker.pending_results.unlink();
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

void ProcessPoolCore::reject(std::uint32_t index, const char* why) {
  Worker& worker = workers_[index];
  if (!protocol_error_) {
    protocol_error_ = "pool: worker process " + std::to_string(worker.pid) + " sent " + why +
                      "; it was stopped and replaced";
  }
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
  if (worker.busy) {
    worker.busy = false;
    control_->cancelled.store(1, std::memory_order_relaxed);
    if (!death_) {
      const std::int64_t item =
          control_->slots()[index].current_item.load(std::memory_order_relaxed);
      death_ = Death{item < 0 ? WorkerDied::kNoTask : item, worker.pid, wait_status};
    }
  }
}

void ProcessPoolCore::close_channel(Worker& worker) {
  if (!worker.channel) return;
  forget_parent_end(worker.channel->native_handle());
  boost::system::error_code ignored;
  worker.channel->close(ignored);
}

bool ProcessPoolCore::send(std::uint32_t index, const Message& message) {
  return write_message(workers_[index].channel->native_handle(), message);
}

std::byte* ProcessPoolCore::reserve_arena(std::size_t bytes) {
  if (bytes <= arena_.size()) return arena_.data();
  SharedSegment larger =
      SharedSegment::create_named(round_to_pages(std::max(bytes, 2 * arena_.size())));
  io_.restart();
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    if (!workers_[i].alive) continue;
    if (send(i,
             make_message(MessageType::kMapArena, i, 0, larger.size(), 0, larger.name().c_str()))) {
      workers_[i].awaiting_arena_ack = true;
      ++arena_acks_pending_;
    }
  }
  while (arena_acks_pending_ > 0) io_.run_one();
  larger.unlink();
  arena_ = std::move(larger);
  respawn_dead();  // a worker forked now inherits the new arena
  if (protocol_error_) throw std::runtime_error(*std::exchange(protocol_error_, std::nullopt));
  return arena_.data();
}

void ProcessPoolCore::run(JobDescriptor job) {
  if (::getpid() != owner_) {
    throw std::logic_error("pool: a ProcessPool can only be used by the process that created it");
  }
  io_.restart();
  io_.poll();  // deaths between calls
  respawn_dead();
  death_.reset();
  protocol_error_.reset();
  const std::uint64_t seq = ++seq_;
  control_->job = job;
  control_->next_chunk.store(0, std::memory_order_relaxed);
  control_->cancelled.store(0, std::memory_order_relaxed);
  control_->job_seq.store(seq, std::memory_order_release);
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    workers_[i].failures.clear();
    workers_[i].busy = true;
    send(i, make_message(MessageType::kRunJob, i, seq));  // a dead one shows up as EOF
  }
  auto anyone_busy = [this] {
    return std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.busy; });
  };
  while (anyone_busy()) io_.run_one();
  respawn_dead();
  throw_failure();
}

void ProcessPoolCore::throw_failure() {
  if (death_) {
    const Death death = *std::exchange(death_, std::nullopt);
    throw WorkerDied(death.task_index, death.pid, death.wait_status);
  }
  if (protocol_error_) throw std::runtime_error(*std::exchange(protocol_error_, std::nullopt));
  std::optional<TaskFailure> first;
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    for (const auto& [offset, size] : workers_[i].failures) {
      MemoryReadBuffer buffer(workers_[i].results.data() + offset, size);
      std::istream stream(&buffer);
      cereal::BinaryInputArchive archive(stream);
      TaskFailure failure;
      archive(failure);
      if (!first || failure.index < first->index) first = std::move(failure);
    }
  }
  if (first) throw first->to_error();
}

const std::byte* ProcessPoolCore::results_of(std::uint32_t worker, std::uint64_t offset,
                                             std::uint64_t size) const {
  if (worker >= workers_.size() || offset > workers_[worker].results.size() ||
      size > workers_[worker].results.size() - offset) {
    throw std::runtime_error("pool: a chunk's results lie outside its worker's result buffer");
  }
  return workers_[worker].results.data() + offset;
}

}  // namespace pool::detail
