#include "pool/process_pool.h"

#include <stdexcept>

#include "pool/cpus.h"

namespace pool {
namespace {

detail::CoreOptions core_options(const ProcessPoolOptions& options) {
  detail::CoreOptions core;
  core.start = options.start;
  core.allow_fork_with_threads = options.allow_fork_with_threads;
  core.initializer = options.initializer;
  core.maxtasksperchild = options.maxtasksperchild;
  core.max_memory_per_child = options.max_memory_per_child;
  core.retries = options.retries < 0 ? 0 : options.retries;
  core.capture_output = options.capture_output;
  core.task_timeout = options.task_timeout;
  core.start_timeout = options.start_timeout;
  core.handle_interrupts = options.handle_interrupts;
  core.trace = options.trace;
  if (options.pin_workers) core.pinning = detail::CpuPinning::for_this_process();
  return core;
}

}  // namespace

ProcessPool::ProcessPool() : ProcessPool(available_cpus()) {}

ProcessPool::ProcessPool(int ncores, ProcessPoolOptions options)
    : BasicPool(detail::ProcessBackend(
                    std::make_unique<detail::ProcessPoolCore>(ncores, core_options(options))),
                options.progress) {}

Start ProcessPool::start_method() const { return backend().core().start_method(); }

ProcessPool::~ProcessPool() = default;
ProcessPool::ProcessPool(ProcessPool&&) noexcept = default;
ProcessPool& ProcessPool::operator=(ProcessPool&&) noexcept = default;

}  // namespace pool
