// max_memory_per_child: a worker's resident memory, checked between chunks. Reading it costs a
// read of /proc/self/statm (a few microseconds), so it is read at most once per coarse clock tick
// (1-4 ms) and chunks shorter than that pay one vDSO clock read; a chunk that can grow memory by
// much takes longer than a tick and is always followed by a check.
#ifndef POOL_DETAIL_PROCESS_MEMORY_GUARD_H_
#define POOL_DETAIL_PROCESS_MEMORY_GUARD_H_

#include <cstdint>

namespace pool::detail {

class MemoryGuard {
 public:
  // limit_bytes 0: never over. Opens /proc/self/statm of the calling process.
  explicit MemoryGuard(std::uint64_t limit_bytes);
  ~MemoryGuard();
  MemoryGuard(const MemoryGuard&) = delete;
  MemoryGuard& operator=(const MemoryGuard&) = delete;

  // Whether the resident set exceeds the limit (read afresh when a tick passed since the last
  // reading).
  bool over() {
    if (limit_ == 0) return false;
    return over_slow();
  }

 private:
  bool over_slow();

  std::uint64_t limit_;
  int statm_ = -1;
  std::int64_t last_tick_ = -1;
  bool over_ = false;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_MEMORY_GUARD_H_
