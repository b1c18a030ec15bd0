#include "bench/references.h"

#include <sched.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace bench {
namespace {

[[noreturn]] void fail(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// A child that writes body()'s value to `fd` and exits without running the parent's exit code.
template <class Body>
pid_t fork_child(int fd, int unused_fd, Body&& body) {
  const pid_t pid = fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    close(unused_fd);
    const auto value = body();
    const bool sent = write(fd, &value, sizeof value) == sizeof value;
    _exit(sent ? 0 : 1);
  }
  close(fd);
  return pid;
}

template <class T>
T read_answer(int fd, pid_t pid) {
  T value{};
  const ssize_t got = read(fd, &value, sizeof value);
  close(fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got != sizeof value || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("bench: a child process did not answer");
  }
  return value;
}

}  // namespace

std::vector<double> fork_pipe_map(int parts, const std::function<double(int)>& part) {
  std::vector<int> fds(static_cast<std::size_t>(parts));
  std::vector<pid_t> pids(static_cast<std::size_t>(parts));
  for (int i = 0; i < parts; ++i) {
    int ends[2];
    if (pipe(ends) != 0) fail("pipe");
    pids[i] = fork_child(ends[1], ends[0], [&] { return part(i); });
    fds[i] = ends[0];
  }
  std::vector<double> values;
  values.reserve(fds.size());
  for (int i = 0; i < parts; ++i) values.push_back(read_answer<double>(fds[i], pids[i]));
  return values;
}

Timed in_child(const std::function<Timed()>& body) {
  int ends[2];
  if (pipe(ends) != 0) fail("pipe");
  const pid_t pid = fork_child(ends[1], ends[0], body);
  return read_answer<Timed>(ends[0], pid);
}

void fork_and_reap(int children) {
  std::vector<pid_t> pids;
  for (int i = 0; i < children; ++i) {
    const pid_t pid = fork();
    if (pid < 0) fail("fork");
    if (pid == 0) _exit(0);
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

void spawn_and_reap(int children) {
  std::vector<pid_t> pids;
  std::string program = "/proc/self/exe";
  std::string flag = kExitAtOnce;
  char* argv[] = {program.data(), flag.data(), nullptr};
  for (int i = 0; i < children; ++i) {
    pid_t pid = -1;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, environ) != 0) {
      fail("posix_spawn");
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

// Counters on separate cache lines: only `next` is contended, as a pool's chunk cursor is.
struct SharedCounterLimit::Shared {
  alignas(64) std::atomic<std::int64_t> generation{0};
  std::atomic<bool> stop{false};
  std::int64_t items = 0;
  alignas(64) std::atomic<std::int64_t> next{0};
  alignas(64) std::atomic<int> children_done{0};
};

namespace {

void square_items(std::atomic<std::int64_t>& next, std::int64_t items, std::int64_t* results) {
  for (std::int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < items;
       i = next.fetch_add(1, std::memory_order_relaxed)) {
    results[i] = i * i;
  }
}

}  // namespace

SharedCounterLimit::SharedCounterLimit(std::int64_t max_items, int processes)
    : max_items_(max_items) {
  void* control =
      mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (control == MAP_FAILED) fail("mmap");
  shared_ = new (control) Shared;
  const std::size_t bytes = static_cast<std::size_t>(max_items) * sizeof(std::int64_t);
  void* results = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (results == MAP_FAILED) fail("mmap");
  results_ = static_cast<std::int64_t*>(results);
  const pid_t parent = getpid();
  for (int i = 1; i < processes; ++i) {
    const pid_t child = fork();
    if (child < 0) fail("fork");
    if (child > 0) {
      children_.push_back(child);
      continue;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    std::int64_t seen = 0;
    for (;;) {
      // Between runs a child spins, yielding: it must start as soon as the parent does.
      std::int64_t now;
      while ((now = shared_->generation.load(std::memory_order_acquire)) == seen) {
        if (shared_->stop.load(std::memory_order_relaxed)) _exit(0);
        sched_yield();
      }
      seen = now;
      square_items(shared_->next, shared_->items, results_);
      shared_->children_done.fetch_add(1, std::memory_order_acq_rel);
    }
  }
}

SharedCounterLimit::~SharedCounterLimit() {
  shared_->stop.store(true);
  for (int child : children_) waitpid(child, nullptr, 0);
  munmap(results_, static_cast<std::size_t>(max_items_) * sizeof(std::int64_t));
  munmap(shared_, sizeof(Shared));
}

void SharedCounterLimit::run(std::int64_t items) {
  if (items > max_items_) throw std::invalid_argument("SharedCounterLimit::run: too many items");
  shared_->items = items;
  shared_->next.store(0, std::memory_order_relaxed);
  shared_->children_done.store(0, std::memory_order_relaxed);
  shared_->generation.fetch_add(1, std::memory_order_release);
  square_items(shared_->next, items, results_);
  // Yielding, not spinning: with more processes than cores the children need this core.
  const int children = static_cast<int>(children_.size());
  while (shared_->children_done.load(std::memory_order_acquire) != children) sched_yield();
}

std::int64_t SharedCounterLimit::result(std::int64_t i) const { return results_[i]; }

}  // namespace bench
