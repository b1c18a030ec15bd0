// drive_until: the parent's only loop. It runs the event loop's handlers, checks timeouts and
// start-ups, collects finished chunks, and sleeps on the workers' sockets when nothing is ready.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>

#include "pool/detail/process/core.h"
#include "pool/detail/process/event_loop.h"
#include "pool/detail/process/os.h"
#include "pool/detail/wait_hook.h"
#include "pool/errors.h"

namespace pool::detail {

bool ProcessPoolCore::drive_until(const std::function<bool()>& done,
                                  std::optional<Clock::time_point> deadline) {
  check_caller();
  if (driving_ > 0) {
    throw std::logic_error("pool: a callback cannot submit work to or wait on its ProcessPool");
  }
  struct Depth {
    int& depth;
    explicit Depth(int& d) : depth(d) { ++depth; }
    ~Depth() { --depth; }
  } depth(driving_);
  // Ctrl-C, or SIGTERM (a scheduler's scancel or time limit), while the caller waits stops the
  // workers and raises Interrupted; outside pool calls both keep their default action (workers
  // then die with the parent). A program that installed its own handler keeps it.
  const bool sigint = options_.handle_interrupts && signal_is_default(SIGINT);
  const bool sigterm = options_.handle_interrupts && signal_is_default(SIGTERM);
  const bool catch_interrupts = sigint || sigterm;
  if (catch_interrupts) loop_->catch_interrupts(sigint, sigterm);
  struct ReleaseInterrupts {
    EventLoop& loop;
    bool active;
    ~ReleaseInterrupts() {
      if (active) loop.release_interrupts();
    }
  } release_interrupts{*loop_, catch_interrupts};

  const bool timed = options_.task_timeout.count() > 0;
  const auto check_period = std::clamp<Clock::duration>(
      std::chrono::duration_cast<Clock::duration>(options_.task_timeout / 10),
      std::chrono::milliseconds(1), std::chrono::milliseconds(50));
  loop_->restart();
  for (;;) {
    loop_->poll();
    if (const int signal_number = loop_->take_interrupt(); signal_number != 0) {
      terminate();
      throw Interrupted(signal_number);
    }
    if (timed) check_timeouts();
    if (starting_ > 0) check_start_timeouts();
    if (vacant_ > 0 && !live_.empty()) retry_vacant_slots();
    collect();
    if (done()) return true;
    run_wait_hook();
    if (deadline && Clock::now() >= *deadline) return false;
    bool waits_for_workers = !live_.empty() && posted_ - live_.front().position >= kJobSlots;
    for (const LiveJob& job : live_)
      waits_for_workers = waits_for_workers || job.failed || job.settled || job.lost;
    control_->parent_sleeping.store(
        waits_for_workers ? kParentWaitsForWorkers : kParentWaitsForJobs,
        std::memory_order_seq_cst);
    collect();
    if (done()) {
      control_->parent_sleeping.store(kParentAwake, std::memory_order_relaxed);
      return true;
    }
    std::optional<Clock::duration> wait;
    if (deadline) wait = std::max<Clock::duration>(*deadline - Clock::now(), Clock::duration(0));
    if (timed && !live_.empty()) wait = wait ? std::min(*wait, check_period) : check_period;
    if (starting_ > 0 || vacant_ > 0) {
      if (const std::optional<std::int64_t> at = next_start_event_ns()) {
        const Clock::duration until =
            std::chrono::nanoseconds(std::max<std::int64_t>(*at - monotonic_now_ns(), 0));
        wait = wait ? std::min(*wait, until) : until;
      }
    }
    if (current_wait_hook != nullptr) {
      const Clock::duration period = kWaitHookPeriod;
      wait = wait ? std::min(*wait, period) : period;
    }
    loop_->run_one(wait);
    control_->parent_sleeping.store(kParentAwake, std::memory_order_relaxed);
  }
}

}  // namespace pool::detail
