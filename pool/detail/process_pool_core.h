// The machinery behind ProcessPool, independent of any task type: it forks and replaces the
// workers, owns the shared memory (control block, arena, per-worker result buffers), runs one job
// at a time, and drives the workers' sockets and SIGCHLD with a Boost.Asio io_context.
//
// Not thread-safe: one thread (the one that created the pool) makes every call.
#ifndef POOL_DETAIL_PROCESS_POOL_CORE_H_
#define POOL_DETAIL_PROCESS_POOL_CORE_H_

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "pool/detail/protocol.h"
#include "pool/detail/shared_segment.h"
#include "pool/detail/worker_context.h"

namespace pool::detail {

class ProcessPoolCore {
 public:
  ProcessPoolCore(int workers, bool allow_fork_with_threads);
  ~ProcessPoolCore();
  ProcessPoolCore(const ProcessPoolCore&) = delete;
  ProcessPoolCore& operator=(const ProcessPoolCore&) = delete;

  int size() const { return static_cast<int>(workers_.size()); }

  // An arena of at least `bytes` for the next job; its content is the caller's until run().
  std::byte* reserve_arena(std::size_t bytes);

  // Dispatches `job` to every worker and waits until all are done with it. Throws TaskError when
  // a task threw, WorkerDied when a worker ended; dead workers are replaced before it returns.
  void run(JobDescriptor job);

  // `size` bytes at `offset` of a worker's result buffer, as written during the last run().
  // Throws std::runtime_error when the span lies outside the buffer.
  const std::byte* results_of(std::uint32_t worker, std::uint64_t offset, std::uint64_t size) const;

 private:
  struct Worker {
    pid_t pid = -1;
    bool alive = false;
    bool busy = false;  // has not finished the current job
    bool awaiting_arena_ack = false;
    std::unique_ptr<boost::asio::posix::stream_descriptor> channel;
    Message inbox{};
    SharedSegment results;          // the worker's result buffer
    SharedSegment pending_results;  // a larger one being handed over
    std::vector<std::pair<std::uint64_t, std::uint64_t>> failures;  // encoded TaskErrors
  };
  struct Death {
    std::int64_t task_index;
    pid_t pid;
    int wait_status;
  };

  void spawn(std::uint32_t index);
  void respawn_dead();
  void stop_workers();
  [[noreturn]] void serve(std::uint32_t index, int fd);
  void grow_results_in_worker(std::uint32_t index, int fd, std::size_t bytes, ResultBuffer& buffer);

  void arm_read(std::uint32_t index);
  void arm_sigchld();
  void on_message(std::uint32_t index, pid_t pid, const boost::system::error_code& error);
  void handle_message(std::uint32_t index, const Message& message);
  void on_exit(std::uint32_t index, int wait_status);
  void close_channel(Worker& worker);
  void reject(std::uint32_t index, const char* why);
  bool send(std::uint32_t index, const Message& message);
  void throw_failure();

  pid_t owner_;
  std::uint64_t seq_ = 0;
  SharedSegment control_segment_;
  ControlBlock* control_ = nullptr;
  SharedSegment arena_;
  int arena_acks_pending_ = 0;
  std::optional<Death> death_;
  std::optional<std::string> protocol_error_;
  boost::asio::io_context io_;
  boost::asio::signal_set sigchld_;
  std::vector<Worker> workers_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_POOL_CORE_H_
