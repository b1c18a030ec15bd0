// The threads behind GilThreadPool and FreeThreadPool: started once, each runs the current job's
// body until the body returns, then waits for the next job. One job at a time.
#ifndef POOL_DETAIL_THREAD_POOL_CORE_H_
#define POOL_DETAIL_THREAD_POOL_CORE_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "pool/detail/gil_lock.h"

namespace pool::detail {

class ThreadPoolCore {
 public:
  // With a GilLock, each thread holds it while it runs a job's body, as CPython threads hold the
  // GIL while they run Python code.
  ThreadPoolCore(int threads, std::unique_ptr<GilLock> gil);
  ~ThreadPoolCore();
  ThreadPoolCore(const ThreadPoolCore&) = delete;
  ThreadPoolCore& operator=(const ThreadPoolCore&) = delete;

  int size() const { return static_cast<int>(threads_.size()); }
  GilLock* gil() const { return gil_.get(); }

  // Runs body(thread_index) on every thread and returns when all returned. body must not throw.
  void run(const std::function<void(int)>& body);

 private:
  void serve(int index);

  std::unique_ptr<GilLock> gil_;
  std::mutex mutex_;
  std::condition_variable job_ready_;
  std::condition_variable job_done_;
  const std::function<void(int)>* body_ = nullptr;
  std::uint64_t job_seq_ = 0;
  int running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_THREAD_POOL_CORE_H_
