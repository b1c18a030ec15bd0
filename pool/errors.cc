#include "pool/errors.h"

#include <sys/wait.h>

#include <csignal>
#include <cstring>
#include <sstream>

#include "pool/detail/interrupt_exit.h"

namespace pool {
namespace {

std::string describe_task_error(std::int64_t index, const std::string& type,
                                const std::string& message) {
  return "task " + std::to_string(index) + " raised " + type + ": " + message;
}

std::string describe_death(std::int64_t index, int pid, int status) {
  std::string text = "worker process " + std::to_string(pid);
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    text += " was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  } else if (WIFEXITED(status)) {
    text += " exited with status " + std::to_string(WEXITSTATUS(status));
  } else {
    text += " ended (wait status " + std::to_string(status) + ")";
  }
  if (index == WorkerDied::kNoTask) {
    text += " between tasks";
  } else {
    text += " while running task " + std::to_string(index);
  }
  return text;
}

}  // namespace

TaskError::TaskError(std::int64_t task_index, std::string type_name, std::string message,
                     std::string stack_trace)
    : std::runtime_error(describe_task_error(task_index, type_name, message)),
      task_index_(task_index),
      type_name_(std::move(type_name)),
      message_(std::move(message)),
      stack_trace_(std::move(stack_trace)) {}

WorkerDied::WorkerDied(std::int64_t task_index, int pid, int wait_status, const std::string& cause,
                       std::string stack_trace)
    : std::runtime_error(describe_death(task_index, pid, wait_status) +
                         (cause.empty() ? "" : " (" + cause + ")")),
      task_index_(task_index),
      pid_(pid),
      signal_(WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0),
      exit_status_(WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1),
      stack_trace_(std::move(stack_trace)) {}

TaskTimeout::TaskTimeout(std::int64_t task_index, int pid, int wait_status, double seconds)
    : WorkerDied(task_index, pid, wait_status), seconds_(seconds) {
  std::ostringstream text;
  text << "task " << task_index << " ran longer than its " << seconds
       << " s timeout; worker process " << pid << " was killed and replaced";
  static_cast<std::runtime_error&>(*this) = std::runtime_error(text.str());
}

Interrupted::Interrupted(int signal_number)
    : std::runtime_error(std::string("pool: interrupted by ") + strsignal(signal_number) +
                         "; the workers were stopped"),
      signal_(signal_number) {
  // Before the throw that follows, so that a program that does not catch it ends as interrupted.
  detail::install_interrupt_exit();
}

InitializerError::InitializerError(std::string type_name, std::string message)
    : std::runtime_error("pool: the initializer raised " + type_name + ": " + message +
                         " in a new worker"),
      type_name_(std::move(type_name)),
      message_(std::move(message)) {}

OutOfMemory::OutOfMemory(std::string message, std::uint64_t requested_bytes,
                         std::uint64_t limit_bytes)
    : message_(std::move(message)), requested_bytes_(requested_bytes), limit_bytes_(limit_bytes) {}

WorkerStartError::WorkerStartError(std::string cause, int tries)
    : std::runtime_error("pool: no worker process could be started (" + std::to_string(tries) +
                         (tries == 1 ? " try" : " tries") + "; the last: " + cause + ")"),
      cause_(std::move(cause)),
      tries_(tries) {}

}  // namespace pool
