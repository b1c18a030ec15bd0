// Bounds on time: a task that runs past task_timeout and a worker that is not ready within
// start_timeout are killed; their deaths are reported in worker_exit.cc.
#include <signal.h>

#include <algorithm>

#include "pool/detail/process/core.h"

namespace pool::detail {

void ProcessPoolCore::check_timeouts() {
  const std::int64_t now = WorkerContext::monotonic_ns();
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    Worker& worker = workers_[i];
    const WorkerSlot& slot = control_->slots()[i];
    if (!worker.alive || worker.timed_out) continue;
    if (slot.current_item.load(std::memory_order_relaxed) < 0) continue;
    const std::int64_t started = slot.item_started_ns.load(std::memory_order_relaxed);
    if (started != 0 && now - started > control_->task_timeout_ns) {
      worker.timed_out = true;
      kill_worker(worker.pid);  // its EOF (and SIGCHLD) report the death
    }
  }
}

void ProcessPoolCore::check_start_timeouts() {
  const std::int64_t now = monotonic_now_ns();
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    Worker& worker = workers_[i];
    if (!worker.starting || !worker.alive) continue;
    if (control_->slots()[i].started.load(std::memory_order_acquire) != kInitializing) {
      worker.starting = false;
      --starting_;
      start_failures_ = 0;
      continue;
    }
    if (options_.start_timeout.count() > 0 && !worker.start_timed_out &&
        now - worker.spawned_ns > options_.start_timeout.count()) {
      worker.start_timed_out = true;
      kill_worker(worker.pid);  // its EOF (and SIGCHLD) report it
    }
  }
}

std::optional<std::int64_t> ProcessPoolCore::next_start_event_ns() const {
  std::optional<std::int64_t> next;
  auto consider = [&next](std::int64_t at) { next = next ? std::min(*next, at) : at; };
  for (const Worker& worker : workers_) {
    if (worker.starting && worker.alive && options_.start_timeout.count() > 0) {
      // A millisecond late, so that check_start_timeouts finds it overdue.
      consider(worker.spawned_ns + options_.start_timeout.count() + 1'000'000);
    }
    if (worker.vacant && !live_.empty()) consider(worker.next_try_ns);
  }
  return next;
}

}  // namespace pool::detail
