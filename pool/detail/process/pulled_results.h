// Results a worker keeps in its own memory for the parent to pull with process_vm_readv, instead
// of writing them into shared memory. Shared memory gets no transparent huge pages on most
// systems (shmem_enabled is "never" by default), so a large result array there is paid page by
// page twice on a first call, once by the writing worker and once by the reading parent; private
// memory advised for huge pages is paid 2 MiB at a time, and stays warm for the next call.
#ifndef POOL_DETAIL_PROCESS_PULLED_RESULTS_H_
#define POOL_DETAIL_PROCESS_PULLED_RESULTS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pool::detail {

// Worker side: a bump allocator over blocks of private memory, rewound once the parent has read
// every record (the blocks stay, warm). Not thread-safe; one per worker.
class PulledResults {
 public:
  PulledResults() = default;
  ~PulledResults();
  PulledResults(const PulledResults&) = delete;
  PulledResults& operator=(const PulledResults&) = delete;

  // `bytes` of 64-byte-aligned space; throws std::bad_alloc when the system has none.
  std::byte* allocate(std::size_t bytes);
  void rewind() {
    current_ = 0;
    used_ = 0;
  }

 private:
  struct Block {
    std::byte* data;
    std::size_t size;
  };
  std::vector<Block> blocks_;
  std::size_t current_ = 0;
  std::size_t used_ = 0;
};

// Parent side: copies `size` bytes at `address` in process `pid` to `into`. Returns 0, or the
// errno that stopped it (ESRCH: the process is gone; EPERM: the system forbids it).
int pull_bytes(pid_t pid, std::uint64_t address, std::byte* into, std::size_t size);

// Whether this process may pull from its child `pid` (Yama's ptrace_scope, seccomp and
// containers may forbid process_vm_readv).
bool can_pull_from(pid_t pid);

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_PULLED_RESULTS_H_
