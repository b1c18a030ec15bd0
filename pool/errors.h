// The exceptions a pool throws, each with the context a user needs to find the failing task.
#ifndef POOL_ERRORS_H_
#define POOL_ERRORS_H_

#include <cstdint>
#include <stdexcept>
#include <string>

namespace pool {

// The task function threw. Thrown by the pool call in the caller's process or thread; when
// several tasks threw, it describes the one with the lowest input index.
// what() reads "task 7 raised std::runtime_error: <original message>".
class TaskError : public std::runtime_error {
 public:
  TaskError(std::int64_t task_index, std::string type_name, std::string message);

  // Index of the failing item in the input range.
  std::int64_t task_index() const noexcept { return task_index_; }
  // Demangled type of the exception, e.g. "std::out_of_range".
  const std::string& type_name() const noexcept { return type_name_; }
  // The exception's own what() text.
  const std::string& message() const noexcept { return message_; }

 private:
  std::int64_t task_index_;
  std::string type_name_;
  std::string message_;
};

// A worker process ended while the call needed it (killed by a signal, _exit, OOM killer).
// The pool has already replaced the worker when this is thrown, so the pool stays usable.
class WorkerDied : public std::runtime_error {
 public:
  // task_index is kNoTask when the worker died between tasks.
  static constexpr std::int64_t kNoTask = -1;

  WorkerDied(std::int64_t task_index, int pid, int wait_status);

  std::int64_t task_index() const noexcept { return task_index_; }
  int pid() const noexcept { return pid_; }
  // The signal that killed the worker, or 0 when it exited.
  int signal() const noexcept { return signal_; }
  // The worker's exit status when it exited, or -1 when a signal killed it.
  int exit_status() const noexcept { return exit_status_; }

 private:
  std::int64_t task_index_;
  int pid_;
  int signal_;
  int exit_status_;
};

// A task ran longer than the pool's task_timeout; its worker was killed (SIGKILL) and replaced.
class TaskTimeout : public WorkerDied {
 public:
  TaskTimeout(std::int64_t task_index, int pid, int wait_status, double seconds);
  // The limit that was exceeded.
  double timeout_seconds() const noexcept { return seconds_; }

 private:
  double seconds_;
};

// AsyncResult::get(timeout) found no result in time; the work goes on (Python's
// multiprocessing.TimeoutError).
class TimeoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A call on a pool that was closed or terminated (Python's "Pool not running"), or a result that
// the pool dropped because it was terminated before it was ready.
class PoolNotRunning : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// SIGINT (Ctrl-C) arrived while the caller waited on a ProcessPool: the workers were stopped and
// reaped and the pool is terminated. Programs usually exit with status 130 (128 + SIGINT).
class Interrupted : public std::runtime_error {
 public:
  explicit Interrupted(int signal_number);
  int signal_number() const noexcept { return signal_; }

 private:
  int signal_;
};

// The pool's initializer threw in a worker; the pool does not start workers that cannot start.
class InitializerError : public std::runtime_error {
 public:
  InitializerError(std::string type_name, std::string message);
  const std::string& type_name() const noexcept { return type_name_; }
  const std::string& message() const noexcept { return message_; }

 private:
  std::string type_name_;
  std::string message_;
};

}  // namespace pool

#endif  // POOL_ERRORS_H_
