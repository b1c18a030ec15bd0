// Python's Pool lifecycle, the same on every pool and with one set of messages: a pool is open
// until close() (calls submitted still run) or terminate() (calls not finished fail); join(),
// after either, waits for what was submitted and stops the workers. Not synchronized: each pool
// core guards it as it guards the rest of its state.
#ifndef POOL_DETAIL_LIFECYCLE_H_
#define POOL_DETAIL_LIFECYCLE_H_

#include <exception>
#include <stdexcept>

#include "pool/errors.h"

namespace pool::detail {

class Lifecycle {
 public:
  // Ordered: a state allows what every later one forbids.
  enum class State { kOpen, kClosed, kStopped, kTerminated };

  State state() const { return state_; }
  bool open() const { return state_ == State::kOpen; }
  bool terminated() const { return state_ == State::kTerminated; }

  // Throws PoolNotRunning unless the pool takes new calls.
  void check_open() const {
    if (state_ != State::kOpen) throw not_running();
  }
  PoolNotRunning not_running() const {
    return PoolNotRunning(state_ == State::kTerminated
                              ? "pool: the pool was terminated"
                              : "pool: the pool was closed; it takes no more work");
  }
  // What a call that was still running when the pool was terminated fails with.
  static std::exception_ptr terminated_before_done() {
    return std::make_exception_ptr(
        PoolNotRunning("pool: the pool was terminated before this result was ready"));
  }

  void close() {
    if (state_ == State::kOpen) state_ = State::kClosed;
  }
  // Throws std::logic_error unless close() or terminate() came first, as Python's ValueError.
  void check_can_join() const {
    if (state_ == State::kOpen) {
      throw std::logic_error("pool: join() needs close() or terminate() first");
    }
  }
  // The workers are stopped (join); a terminated pool stays terminated.
  void stopped() {
    if (state_ != State::kTerminated) state_ = State::kStopped;
  }
  // True the first time.
  bool terminate() {
    const bool first = state_ != State::kTerminated;
    state_ = State::kTerminated;
    return first;
  }

 private:
  State state_ = State::kOpen;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_LIFECYCLE_H_
