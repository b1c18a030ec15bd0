// What a worker's end means: the call it was running fails with the cause (a timeout, a stop by
// the parent, a signal, the OOM killer), and its slot gets a replacement.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <sstream>
#include <string>
#include <utility>

#include "pool/detail/memory_limits.h"
#include "pool/detail/process/core.h"
#include "pool/detail/process/crash_stack.h"
#include "pool/detail/process/os.h"
#include "pool/errors.h"

namespace pool::detail {
namespace {

std::string seconds_text(std::chrono::nanoseconds duration) {
  std::ostringstream text;
  text << std::chrono::duration<double>(duration).count() << " s";
  return text.str();
}

}  // namespace

void ProcessPoolCore::stop_worker(std::uint32_t index, std::exception_ptr why) {
  Worker& worker = workers_[index];
  worker.stopped_because = std::move(why);
  kill_worker(worker.pid);
  on_exit(index, reap_worker(worker.pid, kExitGrace));
}

void ProcessPoolCore::on_exit(std::uint32_t index, int wait_status) {
  Worker& worker = workers_[index];
  if (!worker.alive) return;
  worker.alive = false;
  worker.ended_pid = worker.pid;
  worker.ended_status = wait_status;
  close_channel(index);
  worker.pending_results = SharedSegment();
  if (worker.awaiting_arena_ack) {
    worker.awaiting_arena_ack = false;
    --arena_acks_pending_;
  }
  if (worker.starting) {
    worker.starting = false;
    --starting_;
  }
  if (lifecycle_.state() >= Lifecycle::State::kStopped) return;
  if (worker.start_timed_out) {
    return note_start_failure(
        index, "worker process " + std::to_string(worker.pid) + " did not become ready within " +
                   seconds_text(options_.start_timeout) +
                   " of its start and was killed (a blocked initializer? a lock held by another "
                   "thread at fork?)");
  }
  const WorkerSlot& slot = control_->slots()[index];
  const std::int64_t item = slot.current_item.load(std::memory_order_relaxed);
  if (item != kNoItem || worker.timed_out || worker.stopped_because) {
    const std::int64_t task = item < 0 ? WorkerDied::kNoTask : item;
    std::exception_ptr error;
    if (worker.stopped_because) {
      error = worker.stopped_because;
    } else if (worker.timed_out) {
      error = std::make_exception_ptr(
          TaskTimeout(task, worker.pid, wait_status,
                      std::chrono::duration<double>(options_.task_timeout).count()));
    } else {
      std::string cause;
      if (WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL) {
        // Nobody in the pool sent it; if the OOM killer ran meanwhile, it is the likely sender.
        const std::uint64_t oom_kills = oom_kill_count();
        if (oom_kills > oom_kills_seen_) {
          cause =
              "the kernel's OOM killer ran meanwhile: the system or its memory cgroup ran out "
              "of memory";
        }
        oom_kills_seen_ = oom_kills;
      }
      const std::string attempts = attempts_note(index);
      if (!attempts.empty()) cause = cause.empty() ? attempts : cause + "; " + attempts;
      std::string stack;
      if (WIFSIGNALED(wait_status)) {
        stack = take_crash_stack(control_->slots()[index], WTERMSIG(wait_status));
      }
      error = std::make_exception_ptr(
          WorkerDied(task, worker.pid, wait_status, cause, std::move(stack)));
    }
    fail_job_of_worker(index, error, /*retryable=*/!worker.stopped_because);
  }
  // Otherwise it died between tasks (maxtasksperchild, or killed while idle): nothing was lost.
  if (options_.initializer &&
      control_->slots()[index].started.load(std::memory_order_acquire) != kStarted) {
    note_startup(index, worker.pid);
    return;
  }
  if (!broken_) replace(index);
}

}  // namespace pool::detail
