// The exceptions a pool throws, each with the context a user needs to find the failing task.
#ifndef POOL_ERRORS_H_
#define POOL_ERRORS_H_

#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>

namespace pool {

// The task function threw. Thrown by the pool call in the caller's process or thread; when
// several tasks threw, it describes the one with the lowest input index.
// what() reads "task 7 raised std::runtime_error: <original message>".
class TaskError : public std::runtime_error {
 public:
  TaskError(std::int64_t task_index, std::string type_name, std::string message,
            std::string stack_trace = {});

  // Index of the failing item in the input range.
  std::int64_t task_index() const noexcept { return task_index_; }
  // Demangled type of the exception, e.g. "std::out_of_range".
  const std::string& type_name() const noexcept { return type_name_; }
  // The exception's own what() text.
  const std::string& message() const noexcept { return message_; }
  // Where it was thrown in the worker, one frame per line ("#0 function at file:line"); empty
  // where it could not be recorded (an exception thrown in a library built without frame info).
  const std::string& stack_trace() const noexcept { return stack_trace_; }

 private:
  std::int64_t task_index_;
  std::string type_name_;
  std::string message_;
  std::string stack_trace_;
};

// A worker process ended while the call needed it (killed by a signal, _exit, OOM killer).
// The pool has already replaced the worker when this is thrown, so the pool stays usable.
class WorkerDied : public std::runtime_error {
 public:
  // task_index is kNoTask when the worker died between tasks.
  static constexpr std::int64_t kNoTask = -1;

  // `cause`, when known, is appended to what(), e.g. "the kernel's OOM killer ran meanwhile".
  WorkerDied(std::int64_t task_index, int pid, int wait_status, const std::string& cause = {},
             std::string stack_trace = {});

  std::int64_t task_index() const noexcept { return task_index_; }
  int pid() const noexcept { return pid_; }
  // The signal that killed the worker, or 0 when it exited.
  int signal() const noexcept { return signal_; }
  // The worker's exit status when it exited, or -1 when a signal killed it.
  int exit_status() const noexcept { return exit_status_; }
  // For a crash (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT in a worker process): where it happened,
  // one frame per line; empty otherwise.
  const std::string& stack_trace() const noexcept { return stack_trace_; }

 private:
  std::int64_t task_index_;
  int pid_;
  int signal_;
  int exit_status_;
  std::string stack_trace_;
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

// AsyncResult::cancel() dropped the call before it ran, or cancel(pool::kill_running) stopped the
// worker running it (concurrent.futures' CancelledError).
class CancelledError : public std::runtime_error {
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
// reaped and the pool is terminated. The pool catches SIGINT only while the caller waits on it and
// only when SIGINT has its default action, so a program's own handler is left alone.
// To print something or clean up, catch it and return 130 (128 + SIGINT) from main, as the
// examples do (examples/cli.h). Left uncaught, it ends the program as Ctrl-C would without a pool:
// killed by SIGINT (a shell reports 130), not aborted by std::terminate (134). For that the first
// Interrupted installs a std::terminate handler that defers to the one installed before it for any
// other exception; a terminate handler the program installs later replaces it.
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

// A call needs more memory than this machine (or the pool's cgroup) can give it: its inputs or
// results, or a worker's buffer for serialized results (Python's MemoryError). A call's own
// sizes are checked before anything is posted, so the pool is untouched and the next call works.
// A std::bad_alloc, so code that handles allocation failures handles it too.
class OutOfMemory : public std::bad_alloc {
 public:
  // limit_bytes: what the request was checked against; 0 when the system refused it directly.
  OutOfMemory(std::string message, std::uint64_t requested_bytes, std::uint64_t limit_bytes);
  const char* what() const noexcept override { return message_.c_str(); }
  std::uint64_t requested_bytes() const noexcept { return requested_bytes_; }
  std::uint64_t limit_bytes() const noexcept { return limit_bytes_; }

 private:
  std::string message_;
  std::uint64_t requested_bytes_;
  std::uint64_t limit_bytes_;
};

// No worker process could be started: every try to start or replace one failed (fork refused,
// other threads running, a start-up that did not finish in time) and the pool has none left.
// Pending and later calls on the pool throw it.
class WorkerStartError : public std::runtime_error {
 public:
  WorkerStartError(std::string cause, int tries);
  // Why the last try failed, e.g. "fork of a worker: Resource temporarily unavailable".
  const std::string& cause() const noexcept { return cause_; }
  int tries() const noexcept { return tries_; }

 private:
  std::string cause_;
  int tries_;
};

}  // namespace pool

#endif  // POOL_ERRORS_H_
