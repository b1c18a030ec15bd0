#include "pool/detail/gil_lock.h"

#include <thread>

#include "pool/detail/trace_buffer.h"
#include "pool/gil.h"

namespace pool::detail {

GilLock*& GilLock::current() {
  thread_local GilLock* lock = nullptr;
  return lock;
}

void GilLock::take(std::unique_lock<std::mutex>& guard) {
  waiting_.fetch_add(1, std::memory_order_relaxed);
  changed_.wait(guard, [this] { return !held_; });
  waiting_.fetch_sub(1, std::memory_order_relaxed);
  held_ = true;
  switches_.fetch_add(1, std::memory_order_relaxed);
  acquired_at_ = std::chrono::steady_clock::now();
  // A holder that handed the lock over waits for this switch (forced switching) before it queues
  // for the lock again; without the wake-up it would wait until the lock is next released, and
  // meanwhile no thread would be waiting, so the new holder would never hand it back.
  changed_.notify_all();
}

void GilLock::acquire() {
  std::unique_lock<std::mutex> guard(mutex_);
  take(guard);
}

void GilLock::release() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    held_ = false;
  }
  changed_.notify_all();
}

void GilLock::hand_over() {
  // Traced, the task's run span ends here and its wait for the lock begins.
  SpanRecorder* recorder = this_thread_recorder();
  const std::int64_t released_ns = recorder != nullptr ? monotonic_now_ns() : 0;
  if (recorder != nullptr) recorder->lock_released(released_ns);
  std::unique_lock<std::mutex> guard(mutex_);
  const std::uint64_t before = switches_.load(std::memory_order_relaxed);
  held_ = false;
  changed_.notify_all();
  // Forced switching: wait until a waiter took the lock, so this thread cannot win it right back.
  changed_.wait(guard, [&] {
    return switches_.load(std::memory_order_relaxed) != before ||
           waiting_.load(std::memory_order_relaxed) == 0;
  });
  take(guard);
  guard.unlock();
  if (recorder != nullptr) recorder->lock_taken(released_ns);
}

}  // namespace pool::detail

namespace pool::gil {

void checkpoint() {
  if (detail::GilLock* lock = detail::GilLock::current()) lock->checkpoint();
}

bool held_by_this_thread() { return detail::GilLock::current() != nullptr; }

void sleep_for(std::chrono::nanoseconds duration) {
  Released released;
  std::this_thread::sleep_for(duration);
}

Released::Released() : lock_(detail::GilLock::current()) {
  if (lock_ != nullptr) {
    detail::GilLock::current() = nullptr;  // nested scopes and checkpoints see no lock
    if (detail::SpanRecorder* recorder = detail::this_thread_recorder()) {
      recorder->lock_released(detail::monotonic_now_ns());
    }
    lock_->release();
  }
}

Released::~Released() {
  if (lock_ != nullptr) {
    // The blocking call is over: from here the thread waits for the lock.
    detail::SpanRecorder* recorder = detail::this_thread_recorder();
    const std::int64_t waiting_ns = recorder != nullptr ? detail::monotonic_now_ns() : 0;
    lock_->acquire();
    detail::GilLock::current() = lock_;
    if (recorder != nullptr) recorder->lock_taken(waiting_ns);
  }
}

}  // namespace pool::gil
