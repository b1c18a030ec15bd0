// How many CPUs this process may run on, which ones, and how pools pin their workers to them.
#ifndef POOL_CPUS_H_
#define POOL_CPUS_H_

#include <cstddef>
#include <thread>
#include <utility>
#include <vector>

namespace pool {

// The CPUs in this process's affinity mask (sched_getaffinity), so Slurm's and cgroups' CPU sets
// are respected; at least 1. This is the default size of every pool.
int available_cpus();

// The numbers of those CPUs, ascending (empty only if the mask cannot be read).
std::vector<int> allowed_cpus();

namespace detail {

// pin_workers: worker i is bound to the i-th CPU of the set its pool's creator may use (wrapping
// around when there are more workers than CPUs). The set is read when the pool is made, so a
// replacement worker gets the same CPU as the one it replaces.
class CpuPinning {
 public:
  CpuPinning() = default;  // pins nothing
  static CpuPinning for_this_process();
  // The pinning a pool sent to a worker that is not its fork.
  static CpuPinning of(std::vector<int> cpus) {
    CpuPinning pinning;
    pinning.cpus_ = std::move(cpus);
    return pinning;
  }
  const std::vector<int>& cpus() const { return cpus_; }

  bool on() const { return !cpus_.empty(); }
  int cpu_of(int worker) const { return cpus_[static_cast<std::size_t>(worker) % cpus_.size()]; }
  // Binds the calling thread, or `thread`, to worker `worker`'s CPU; a no-op when off. Throws
  // std::system_error.
  void pin(int worker) const;
  void pin(int worker, std::thread& thread) const;

 private:
  std::vector<int> cpus_;
};

}  // namespace detail
}  // namespace pool

#endif  // POOL_CPUS_H_
