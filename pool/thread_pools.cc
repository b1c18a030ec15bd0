#include "pool/thread_pools.h"

#include "pool/cpus.h"

namespace pool {

GilThreadPool::GilThreadPool() : GilThreadPool(available_cpus()) {}

GilThreadPool::GilThreadPool(int ncores, std::chrono::nanoseconds switch_interval,
                             ThreadPoolOptions options)
    : BasicPool(
          detail::ThreadBackend(std::make_unique<detail::ThreadPoolCore>(
              ncores, std::make_unique<detail::GilLock>(switch_interval),
              std::move(options.initializer), std::move(options.trace),
              options.pin_workers ? detail::CpuPinning::for_this_process() : detail::CpuPinning(),
              options.capture_output)),
          options.progress) {}

void GilThreadPool::set_switch_interval(std::chrono::nanoseconds interval) {
  backend().core().gil()->set_switch_interval(interval);
}

std::chrono::nanoseconds GilThreadPool::switch_interval() const {
  return backend().core().gil()->switch_interval();
}

FreeThreadPool::FreeThreadPool() : FreeThreadPool(available_cpus()) {}

FreeThreadPool::FreeThreadPool(int ncores, ThreadPoolOptions options)
    : BasicPool(
          detail::ThreadBackend(std::make_unique<detail::ThreadPoolCore>(
              ncores, nullptr, std::move(options.initializer), std::move(options.trace),
              options.pin_workers ? detail::CpuPinning::for_this_process() : detail::CpuPinning(),
              options.capture_output)),
          options.progress) {}

}  // namespace pool
