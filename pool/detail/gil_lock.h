// The global interpreter-like lock of one GilThreadPool, modelled on CPython's GIL (3.2+): a
// holder keeps it until it blocks or until a checkpoint after the switch interval finds a waiter;
// then it hands over and does not take it back before another thread did (forced switching), so
// a waiting thread always gets its turn.
#ifndef POOL_DETAIL_GIL_LOCK_H_
#define POOL_DETAIL_GIL_LOCK_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace pool::detail {

class GilLock {
 public:
  explicit GilLock(std::chrono::nanoseconds switch_interval) : interval_(switch_interval) {}

  void acquire();
  void release();
  // Called by the holder: hands over if the interval passed and somebody waits.
  void checkpoint() {
    if (waiting_.load(std::memory_order_relaxed) == 0) return;
    if (std::chrono::steady_clock::now() - acquired_at_ < switch_interval()) return;
    hand_over();
  }

  void set_switch_interval(std::chrono::nanoseconds interval) {
    interval_.store(interval, std::memory_order_relaxed);
  }
  std::chrono::nanoseconds switch_interval() const {
    return interval_.load(std::memory_order_relaxed);
  }
  // How often the lock changed hands; for tests and statistics.
  std::uint64_t switches() const { return switches_.load(std::memory_order_relaxed); }

  // The lock of the GIL pool thread this is called on, or nullptr.
  static GilLock*& current();

 private:
  void hand_over();
  void take(std::unique_lock<std::mutex>& guard);

  std::mutex mutex_;
  std::condition_variable changed_;
  bool held_ = false;
  std::atomic<int> waiting_{0};
  std::atomic<std::uint64_t> switches_{0};
  std::chrono::steady_clock::time_point acquired_at_{};  // written by the holder only
  std::atomic<std::chrono::nanoseconds> interval_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_GIL_LOCK_H_
