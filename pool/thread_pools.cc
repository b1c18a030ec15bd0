#include "pool/thread_pools.h"

#include "pool/cpus.h"

namespace pool {

GilThreadPool::GilThreadPool() : GilThreadPool(available_cpus()) {}

GilThreadPool::GilThreadPool(int ncores, std::chrono::nanoseconds switch_interval)
    : core_(std::make_unique<detail::ThreadPoolCore>(
          ncores, std::make_unique<detail::GilLock>(switch_interval))) {}

GilThreadPool::~GilThreadPool() = default;

void GilThreadPool::set_switch_interval(std::chrono::nanoseconds interval) {
  core_->gil()->set_switch_interval(interval);
}

std::chrono::nanoseconds GilThreadPool::switch_interval() const {
  return core_->gil()->switch_interval();
}

FreeThreadPool::FreeThreadPool() : FreeThreadPool(available_cpus()) {}

FreeThreadPool::FreeThreadPool(int ncores)
    : core_(std::make_unique<detail::ThreadPoolCore>(ncores, nullptr)) {}

FreeThreadPool::~FreeThreadPool() = default;

}  // namespace pool
