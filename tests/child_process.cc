#include "tests/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/leak_check.h"

namespace pool::testing {

bool ChildOutcome::exited_with(int code) const {
  return finished && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == code;
}

std::string ChildOutcome::describe() const {
  std::string text;
  if (!finished) {
    text = "still running at the deadline (killed)";
  } else if (WIFEXITED(wait_status)) {
    text = "exited with " + std::to_string(WEXITSTATUS(wait_status));
  } else if (WIFSIGNALED(wait_status)) {
    text = "killed by signal " + std::to_string(WTERMSIG(wait_status)) + " (" +
           strsignal(WTERMSIG(wait_status)) + ")";
  }
  return text + "; it reported: " + report;
}

ChildOutcome run_in_child(const std::function<int(std::ostream& report)>& body,
                          std::chrono::seconds deadline) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(fds[0]);
    std::ostringstream report;
    int code = 99;
    try {
      code = body(report);
    } catch (const std::exception& error) {
      report << " [uncaught exception: " << error.what() << "]";
    } catch (...) {
      report << " [uncaught exception]";
    }
    const std::string text = report.str();
    std::size_t written = 0;
    while (written < text.size()) {
      const ssize_t n = ::write(fds[1], text.data() + written, text.size() - written);
      if (n <= 0) break;
      written += static_cast<std::size_t>(n);
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  ::close(fds[1]);
  ChildOutcome outcome;
  const auto end = std::chrono::steady_clock::now() + deadline;
  char buffer[4096];
  bool open = true;
  // The pool's workers inherit the pipe too, so the child's exit, not EOF, ends the wait.
  for (;;) {
    if (open) {
      pollfd readable{fds[0], POLLIN, 0};
      if (::poll(&readable, 1, 20) > 0) {
        const ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
        if (n > 0) {
          outcome.report.append(buffer, static_cast<std::size_t>(n));
          continue;
        }
        open = false;
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const pid_t done = ::waitpid(pid, &outcome.wait_status, WNOHANG);
    if (done == pid) {
      outcome.finished = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= end) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &outcome.wait_status, 0);
      break;
    }
  }
  // What the child wrote just before it exited.
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  ssize_t n = 0;
  while (open && (n = ::read(fds[0], buffer, sizeof(buffer))) > 0) {
    outcome.report.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  return outcome;
}

void wait_or_kill(pid_t pid, std::chrono::milliseconds limit, ChildOutcome& outcome) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (::waitpid(pid, &outcome.wait_status, WNOHANG) == pid) {
      outcome.finished = true;
      return;
    }
    if (std::chrono::steady_clock::now() >= end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &outcome.wait_status, 0);
  outcome.finished = false;
}

char process_state(pid_t pid) {
  std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(stat_file, stat)) return 0;
  const auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return 0;
  return stat[close + 2];
}

std::vector<pid_t> reap_children_within(std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  std::vector<pid_t> alive;
  for (;;) {
    alive.clear();
    for (pid_t child : child_processes()) {
      const char state = process_state(child);
      if (state != 0 && state != 'Z' && state != 'X') alive.push_back(child);
    }
    if (alive.empty() || std::chrono::steady_clock::now() >= end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (pid_t child : alive) ::kill(child, SIGKILL);
  for (pid_t child : child_processes()) ::waitpid(child, nullptr, 0);
  return alive;
}

}  // namespace pool::testing
