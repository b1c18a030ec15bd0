#include "pool/detail/process/forkserver.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <system_error>
#include <vector>

#include "pool/detail/process/bootstrap.h"
#include "pool/detail/process/message.h"

namespace pool::detail {
namespace {

[[noreturn]] void throw_errno(int error, const char* what) {
  throw std::system_error(error, std::generic_category(), what);
}

// ---------------------------------------------------------------------------------------------
// The server.

class Server {
 public:
  explicit Server(int channel) : channel_(channel) {}

  [[noreturn]] void run() {
    // It holds no work: a signal meant for the program's process group leaves it to the program,
    // whose end (EOF on the channel) ends the server.
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGTERM, SIG_IGN);
    ::signal(SIGHUP, SIG_IGN);
    // What `ps` and `top` show for it; its workers take the program's name back.
    ::prctl(PR_GET_NAME, program_name_);
    ::prctl(PR_SET_NAME, "pool-forkserver");
    sigset_t children;
    sigemptyset(&children);
    sigaddset(&children, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &children, nullptr);
    signals_ = ::signalfd(-1, &children, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signals_ < 0) ::_exit(1);
    for (;;) {
      std::vector<pollfd> watched{{channel_, POLLIN, 0}, {signals_, POLLIN, 0}};
      for (const int connection : connections_) watched.push_back({connection, POLLIN, 0});
      if (::poll(watched.data(), watched.size(), -1) < 0) {
        if (errno == EINTR) continue;
        ::_exit(1);
      }
      if (watched[1].revents != 0) reap();
      if (watched[0].revents != 0) accept();
      for (std::size_t i = 2; i < watched.size(); ++i) {
        if (watched[i].revents != 0) serve(watched[i].fd);
      }
    }
  }

 private:
  struct Child {
    pid_t pid;
    int connection;
  };

  void accept() {
    Message message{};
    int passed = -1;
    if (!read_message(channel_, message, &passed)) {
      // The program is gone: so are its pools.
      for (const Child& child : children_) ::kill(child.pid, SIGKILL);
      while (::wait(nullptr) > 0 || errno == EINTR) {
      }
      ::_exit(0);
    }
    if (message.type == MessageType::kConnect && passed >= 0) {
      connections_.push_back(passed);
    } else if (passed >= 0) {
      ::close(passed);
    }
  }

  void serve(int connection) {
    Message message{};
    int passed = -1;
    if (!read_message(connection, message, &passed)) {
      // The pool is gone; its workers go too (they would see EOF on their sockets anyway).
      for (Child& child : children_) {
        if (child.connection != connection) continue;
        ::kill(child.pid, SIGKILL);
        child.connection = -1;
      }
      connections_.erase(std::find(connections_.begin(), connections_.end(), connection));
      ::close(connection);
      return;
    }
    if (message.type != MessageType::kForkWorker || passed < 0) {
      if (passed >= 0) ::close(passed);
      return;
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(channel_);
      ::close(signals_);
      for (const int other : connections_) ::close(other);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::signal(SIGTERM, SIG_DFL);
      ::signal(SIGHUP, SIG_DFL);
      ::prctl(PR_SET_NAME, program_name_);
      serve_bootstrapped_worker(passed);
    }
    const int error = errno;
    ::close(passed);
    if (pid < 0) {
      write_message(connection, make_message(MessageType::kForked, 0, 0, 0, error));
      return;
    }
    children_.push_back({pid, connection});
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    write_message(connection, make_message(MessageType::kForked, 0, 0, pid), pidfd);
    if (pidfd >= 0) ::close(pidfd);
  }

  void reap() {
    signalfd_siginfo info;
    while (::read(signals_, &info, sizeof info) > 0) {
    }
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      const auto child = std::find_if(children_.begin(), children_.end(),
                                      [&](const Child& c) { return c.pid == pid; });
      if (child == children_.end()) continue;
      if (child->connection >= 0) {
        write_message(child->connection,
                      make_message(MessageType::kExited, 0, 0, static_cast<std::uint64_t>(pid),
                                   static_cast<std::uint64_t>(status)));
      }
      children_.erase(child);
    }
  }

  int channel_;
  char program_name_[17] = {};
  int signals_ = -1;
  std::vector<int> connections_;
  std::vector<Child> children_;
};

// ---------------------------------------------------------------------------------------------
// The program's end of the channel.

struct Channel {
  std::mutex mutex;
  int fd = -1;
  pid_t server = -1;
  pid_t owner = -1;  // the process that started the server (a fork of it starts its own)
};

Channel& channel() {
  static Channel* const instance = new Channel;  // used until the process ends
  return *instance;
}

// With channel().mutex held.
void start_server(Channel& state) {
  if (state.owner != ::getpid()) {
    if (state.fd >= 0) ::close(state.fd);  // the parent's server, inherited by a fork
    state.fd = -1;
    state.owner = ::getpid();
  }
  if (state.fd >= 0) return;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw_errno(errno, "pool: socketpair for the forkserver");
  }
  try {
    state.server = start_program(ProgramRole::kForkserver, fds[1]);
  } catch (...) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw;
  }
  ::close(fds[1]);
  state.fd = fds[0];
}

}  // namespace

void serve_forks(int channel) { Server(channel).run(); }

void ensure_forkserver() {
  Channel& state = channel();
  std::lock_guard<std::mutex> lock(state.mutex);
  start_server(state);
}

ForkserverConnection::ForkserverConnection() {
  Channel& state = channel();
  std::lock_guard<std::mutex> lock(state.mutex);
  for (int attempt = 0;; ++attempt) {
    start_server(state);
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      throw_errno(errno, "pool: socketpair for the forkserver");
    }
    const bool sent = write_message(state.fd, make_message(MessageType::kConnect, 0), fds[1]);
    ::close(fds[1]);
    if (sent) {
      fd_ = fds[0];
      return;
    }
    ::close(fds[0]);
    // The server died (killed by hand?): reaped, and a new one started, once.
    ::close(state.fd);
    state.fd = -1;
    while (::waitpid(state.server, nullptr, 0) < 0 && errno == EINTR) {
    }
    if (attempt == 1) throw_errno(EPIPE, "pool: the forkserver is gone and could not be restarted");
  }
}

ForkserverConnection::~ForkserverConnection() {
  for (const auto& [pid, pidfd] : pidfds_) ::close(pidfd);
  if (fd_ >= 0) ::close(fd_);
}

void ForkserverConnection::lose_server() {
  server_gone_ = true;
  for (const auto& [pid, pidfd] : pidfds_) statuses_.try_emplace(pid, SIGKILL);
}

bool ForkserverConnection::read_one(Message& message, int& passed) {
  passed = -1;
  if (server_gone_) return false;
  if (!read_message(fd_, message, &passed)) {
    lose_server();
    return false;
  }
  if (message.type == MessageType::kExited) {
    statuses_[static_cast<pid_t>(message.a)] = static_cast<int>(message.b);
  }
  return true;
}

pid_t ForkserverConnection::fork_worker(int worker_fd) {
  if (server_gone_ || !write_message(fd_, make_message(MessageType::kForkWorker, 0), worker_fd)) {
    lose_server();
    throw_errno(EPIPE, "pool: the forkserver is gone");
  }
  for (;;) {
    Message message{};
    int passed = -1;
    if (!read_one(message, passed)) throw_errno(EPIPE, "pool: the forkserver is gone");
    if (message.type != MessageType::kForked) {
      if (passed >= 0) ::close(passed);
      continue;
    }
    if (message.a == 0) {
      if (passed >= 0) ::close(passed);
      throw_errno(static_cast<int>(message.b), "pool: fork of a worker by the forkserver");
    }
    const auto pid = static_cast<pid_t>(message.a);
    pidfds_[pid] = passed;
    return pid;
  }
}

bool ForkserverConnection::kill(pid_t pid, int signal) {
  const auto it = pidfds_.find(pid);
  if (it == pidfds_.end() || it->second < 0) return false;
  return ::syscall(SYS_pidfd_send_signal, it->second, signal, nullptr, 0) == 0;
}

bool ForkserverConnection::receive(std::optional<std::chrono::steady_clock::time_point> until) {
  for (bool first = true;; first = false) {
    if (server_gone_) return false;
    int wait_ms = 0;
    if (first && until) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(*until - std::chrono::steady_clock::now());
      wait_ms = static_cast<int>(std::max<std::int64_t>(0, left.count()));
    } else if (first) {
      wait_ms = -1;
    }
    pollfd watched{fd_, POLLIN, 0};
    const int ready = ::poll(&watched, 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return true;
    Message message{};
    int passed = -1;
    if (!read_one(message, passed)) return false;
    if (passed >= 0) ::close(passed);
  }
}

std::optional<int> ForkserverConnection::try_reap(pid_t pid) {
  if (!statuses_.count(pid)) receive(std::chrono::steady_clock::now());
  const auto it = statuses_.find(pid);
  if (it == statuses_.end()) return std::nullopt;
  const int status = it->second;
  statuses_.erase(it);
  const auto pidfd = pidfds_.find(pid);
  if (pidfd != pidfds_.end()) {
    if (pidfd->second >= 0) ::close(pidfd->second);
    pidfds_.erase(pidfd);
  }
  return status;
}

int ForkserverConnection::reap(pid_t pid, std::chrono::milliseconds grace) {
  const auto deadline = std::chrono::steady_clock::now() + grace;
  bool killed = false;
  if (grace.count() == 0) {
    kill(pid, SIGKILL);
    killed = true;
  }
  for (;;) {
    if (const std::optional<int> status = try_reap(pid)) return *status;
    if (!pidfds_.count(pid)) return 0;  // not a worker of this connection
    if (!killed && std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      killed = true;
    }
    // The server gone, try_reap finds the status receive() noted for every worker.
    receive(killed ? std::nullopt : std::optional<std::chrono::steady_clock::time_point>(deadline));
  }
}

}  // namespace pool::detail
