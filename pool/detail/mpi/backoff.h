// How an MpiPool rank waits without spinning for long: a rank waiting must leave its core to the
// ranks computing, which often share the node. Yields first, then sleeps 10 us, doubling up to
// 1 ms. Not thread-safe; one per waiting loop.
#ifndef POOL_DETAIL_MPI_BACKOFF_H_
#define POOL_DETAIL_MPI_BACKOFF_H_

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace pool::detail::mpi {

class Backoff {
 public:
  // Something happened: the next pause yields again.
  void reset() { rounds_ = 0; }
  void pause() {
    ++rounds_;
    if (rounds_ < 50) {
      sched_yield();
      return;
    }
    const int doublings = std::min(rounds_ - 50, 7);
    std::this_thread::sleep_for(std::chrono::microseconds(10 << doublings));
  }

 private:
  int rounds_ = 0;
};

}  // namespace pool::detail::mpi

#endif  // POOL_DETAIL_MPI_BACKOFF_H_
