// The parent's side of the workers' sockets: what a worker's message asks for (a larger result
// buffer, an acknowledgement, its start-up outcome), EOF and SIGCHLD as a worker's end, and the
// messages the parent sends.
#include <sys/wait.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "pool/detail/memory_limits.h"
#include "pool/detail/process/core.h"
#include "pool/detail/process/event_loop.h"
#include "pool/detail/process/message.h"
#include "pool/detail/process/os.h"
#include "pool/errors.h"

namespace pool::detail {
namespace {

// A worker asking for a larger result buffer than this is broken, not busy.
constexpr std::uint64_t kMaxResultBytes = std::uint64_t{1} << 40;

}  // namespace

bool ProcessPoolCore::on_message(std::uint32_t index, pid_t pid, const Message* message) {
  Worker& worker = workers_[index];
  if (!worker.alive || worker.pid != pid) return false;  // a closed channel of a reaped worker
  if (message == nullptr) {
    // EOF: the worker is exiting; it is a zombie within moments.
    on_exit(index, reap_worker(worker.pid, kExitGrace));
    return false;
  }
  handle_message(index, *message);
  return worker.alive && worker.pid == pid;
}

void ProcessPoolCore::reap_exited() {
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    Worker& worker = workers_[i];
    if (!worker.alive) continue;
    if (const std::optional<int> status = try_reap_worker(worker.pid)) on_exit(i, *status);
  }
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

void ProcessPoolCore::close_channel(std::uint32_t index) {
  forget_parent_end(loop_->fd(index));
  loop_->close(index);
}

bool ProcessPoolCore::send(std::uint32_t index, const Message& message, int passed_fd) {
  return write_message(loop_->fd(index), message, passed_fd);
}

void ProcessPoolCore::wake_workers() {
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    if (workers_[i].alive &&
        control_->slots()[i].sleeping.exchange(0, std::memory_order_seq_cst) != 0) {
      send(i, make_message(MessageType::kWake, i));  // a dead one shows up as EOF
    }
  }
}

}  // namespace pool::detail
