#include "pool/detail/thread_pool_core.h"

#include <stdexcept>
#include <string>

namespace pool::detail {

ThreadPoolCore::ThreadPoolCore(int threads, std::unique_ptr<GilLock> gil) : gil_(std::move(gil)) {
  if (threads < 1) {
    throw std::invalid_argument("pool: a pool needs at least 1 worker, got " +
                                std::to_string(threads));
  }
  threads_.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this, i] { serve(i); });
}

ThreadPoolCore::~ThreadPoolCore() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    stopping_ = true;
  }
  job_ready_.notify_all();
  for (auto& thread : threads_) thread.join();
}

void ThreadPoolCore::run(const std::function<void(int)>& body) {
  std::unique_lock<std::mutex> guard(mutex_);
  body_ = &body;
  running_ = size();
  ++job_seq_;
  job_ready_.notify_all();
  job_done_.wait(guard, [this] { return running_ == 0; });
  body_ = nullptr;
}

void ThreadPoolCore::serve(int index) {
  std::uint64_t seen = 0;
  for (;;) {
    const std::function<void(int)>* body = nullptr;
    {
      std::unique_lock<std::mutex> guard(mutex_);
      job_ready_.wait(guard, [&] { return stopping_ || job_seq_ != seen; });
      if (stopping_) return;
      seen = job_seq_;
      body = body_;
    }
    if (gil_) {
      gil_->acquire();
      GilLock::current() = gil_.get();
    }
    (*body)(index);
    if (gil_) {
      GilLock::current() = nullptr;
      gil_->release();
    }
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if (--running_ == 0) job_done_.notify_all();
    }
  }
}

}  // namespace pool::detail
