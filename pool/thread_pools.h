// Thread pools with ProcessPool's API, for showing why Python needs processes.
//
// - GilThreadPool: threads that share one global interpreter-like lock, as CPython's threads
//   share the GIL. Task code runs only while holding it, so CPU-bound tasks never overlap and the
//   total time stays serial; the lock changes hands at pool::gil::checkpoint() after the switch
//   interval (default 5 ms, like sys.setswitchinterval), and is released by pool::gil::sleep_for
//   and pool::gil::Released, so sleeping tasks do overlap.
// - FreeThreadPool: plain threads, no global lock (free-threaded Python 3.13t).
//
// Both run map(f, inputs[, chunksize]) like ProcessPool: results in input order, Python's default
// chunksize, TaskError for the lowest failing index. Tasks share the caller's memory, so f and the
// items need not be serializable, and f must be safe to call from several threads at once.
// Threads start in the constructor and are joined in the destructor. Start thread pools after any
// ProcessPool, or destroy them first: a ProcessPool refuses to fork while threads run.
// A pool's calls are made from one thread at a time.
#ifndef POOL_THREAD_POOLS_H_
#define POOL_THREAD_POOLS_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include "pool/detail/thread_map.h"
#include "pool/detail/thread_pool_core.h"
#include "pool/gil.h"
#include "pool/range.h"

namespace pool {

class GilThreadPool {
 public:
  static constexpr std::chrono::milliseconds kDefaultSwitchInterval{5};

  GilThreadPool();  // one thread per available CPU
  // Throws std::invalid_argument if ncores < 1.
  explicit GilThreadPool(int ncores,
                         std::chrono::nanoseconds switch_interval = kDefaultSwitchInterval);
  ~GilThreadPool();

  int size() const { return core_->size(); }
  void set_switch_interval(std::chrono::nanoseconds interval);
  std::chrono::nanoseconds switch_interval() const;

  template <class F, class Inputs>
  auto map(F&& f, const Inputs& inputs, std::size_t chunksize = 0) {
    return detail::thread_map(*core_, f, inputs, chunksize);
  }

 private:
  std::unique_ptr<detail::ThreadPoolCore> core_;
};

class FreeThreadPool {
 public:
  FreeThreadPool();  // one thread per available CPU
  // Throws std::invalid_argument if ncores < 1.
  explicit FreeThreadPool(int ncores);
  ~FreeThreadPool();

  int size() const { return core_->size(); }

  template <class F, class Inputs>
  auto map(F&& f, const Inputs& inputs, std::size_t chunksize = 0) {
    return detail::thread_map(*core_, f, inputs, chunksize);
  }

 private:
  std::unique_ptr<detail::ThreadPoolCore> core_;
};

}  // namespace pool

#endif  // POOL_THREAD_POOLS_H_
