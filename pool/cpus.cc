#include "pool/cpus.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace pool {

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<int>(online) : 1;
}

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  return cpus;
}

namespace detail {

CpuPinning CpuPinning::for_this_process() {
  CpuPinning pinning;
  pinning.cpus_ = allowed_cpus();
  return pinning;
}

namespace {

[[noreturn]] void pin_failed(int error, int worker, int cpu) {
  throw std::system_error(
      error, std::generic_category(),
      "pool: could not pin worker " + std::to_string(worker) + " to CPU " + std::to_string(cpu));
}

cpu_set_t only(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return set;
}

}  // namespace

void CpuPinning::pin(int worker) const {
  if (cpus_.empty()) return;
  const cpu_set_t set = only(cpu_of(worker));
  // 0: the calling thread (a worker process has only that one).
  if (sched_setaffinity(0, sizeof(set), &set) != 0) pin_failed(errno, worker, cpu_of(worker));
}

void CpuPinning::pin(int worker, std::thread& thread) const {
  if (cpus_.empty()) return;
  const cpu_set_t set = only(cpu_of(worker));
  const int error = pthread_setaffinity_np(thread.native_handle(), sizeof(set), &set);
  if (error != 0) pin_failed(error, worker, cpu_of(worker));
}

}  // namespace detail
}  // namespace pool
