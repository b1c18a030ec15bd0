#include "pool/detail/process/os.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace pool::detail {
namespace {

std::vector<int>& parent_ends() {
  static std::vector<int> fds;
  return fds;
}

int threads_in_this_process() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return 1;
}

}  // namespace

std::size_t round_to_pages(std::size_t bytes) {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

int settled_thread_count() {
  int threads = threads_in_this_process();
  for (int retry = 0; threads > 1 && retry < 20; ++retry) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    threads = threads_in_this_process();
  }
  return threads;
}

// A pidfd becomes readable the moment the process exits, so the wait costs no polling delay.
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

bool signal_is_default(int signal_number) {
  struct sigaction current {};
  return ::sigaction(signal_number, nullptr, &current) == 0 && current.sa_handler == SIG_DFL &&
         (current.sa_flags & SA_SIGINFO) == 0;
}

void remember_parent_end(int fd) { parent_ends().push_back(fd); }

void forget_parent_end(int fd) {
  auto& fds = parent_ends();
  fds.erase(std::remove(fds.begin(), fds.end(), fd), fds.end());
}

void close_parent_ends() {
  for (int fd : parent_ends()) ::close(fd);
}

}  // namespace pool::detail
