#include "pool/process_pool.h"

#include "pool/cpus.h"

namespace pool {

ProcessPool::ProcessPool() : ProcessPool(available_cpus()) {}

ProcessPool::ProcessPool(int ncores, ProcessPoolOptions options)
    : core_(std::make_unique<detail::ProcessPoolCore>(ncores, options.allow_fork_with_threads)) {}

ProcessPool::~ProcessPool() = default;
ProcessPool::ProcessPool(ProcessPool&&) noexcept = default;
ProcessPool& ProcessPool::operator=(ProcessPool&&) noexcept = default;

int ProcessPool::size() const { return core_ ? core_->size() : 0; }

}  // namespace pool
