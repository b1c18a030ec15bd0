// Work a calling thread does while it waits inside a pool, such as redrawing a progress bar. The
// pools have no background thread, so a blocked caller is the only one that can draw; every wait
// inside a pool wakes at least every kWaitHookPeriod while a hook is installed on its thread.
#ifndef POOL_DETAIL_WAIT_HOOK_H_
#define POOL_DETAIL_WAIT_HOOK_H_

#include <chrono>

namespace pool::detail {

inline constexpr std::chrono::milliseconds kWaitHookPeriod{100};

class WaitHook {
 public:
  virtual ~WaitHook() = default;
  virtual void on_wait() = 0;
};

inline thread_local WaitHook* current_wait_hook = nullptr;

// Installs a hook on this thread for a scope; hooks nest.
class ScopedWaitHook {
 public:
  explicit ScopedWaitHook(WaitHook* hook) : previous_(current_wait_hook) {
    current_wait_hook = hook;
  }
  ~ScopedWaitHook() { current_wait_hook = previous_; }
  ScopedWaitHook(const ScopedWaitHook&) = delete;
  ScopedWaitHook& operator=(const ScopedWaitHook&) = delete;

 private:
  WaitHook* previous_;
};

// Runs the hook if one is installed.
inline void run_wait_hook() {
  if (WaitHook* hook = current_wait_hook) hook->on_wait();
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_WAIT_HOOK_H_
