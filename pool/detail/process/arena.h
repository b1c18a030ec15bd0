// The pool's job arena: one shared segment that every worker maps, carved into one region per
// posted job by Boost.Interprocess's best-fit allocator. Only the parent allocates and frees; the
// allocator's bookkeeping lives in the segment's first bytes, so no region starts at offset 0 and
// workers address regions by offset.
#ifndef POOL_DETAIL_PROCESS_ARENA_H_
#define POOL_DETAIL_PROCESS_ARENA_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "pool/detail/process/shared_segment.h"

namespace pool::detail {

class Arena {
 public:
  Arena() = default;
  explicit Arena(SharedSegment segment);
  Arena(Arena&&) noexcept;
  Arena& operator=(Arena&&) noexcept;
  ~Arena();

  // The offset of `bytes` of 64-byte-aligned free space, or nothing when the arena is too full.
  std::optional<std::uint64_t> allocate(std::size_t bytes);
  void free(std::uint64_t offset);
  // Throws pool::OutOfMemory when the memory behind [offset, offset + bytes) is not yet in use
  // and the system (or its memory cgroup) has not that much available: a call that cannot get its
  // memory fails before it is posted, not by the OOM killer once a worker writes to it. Less than
  // 16 MiB of new memory is not checked.
  void check_memory(std::uint64_t offset, std::size_t bytes);
  // Regions handed out and not freed.
  std::size_t regions() const { return regions_; }

  std::byte* data() const { return segment_.data(); }
  std::size_t size() const { return segment_.size(); }
  SharedSegment& segment() { return segment_; }

  // What a region of `bytes` needs in an empty arena, allocator bookkeeping included.
  static std::size_t space_for(std::size_t bytes);

 private:
  struct Allocator;
  struct DeleteAllocator {
    void operator()(Allocator* allocator) const;
  };
  SharedSegment segment_;
  std::unique_ptr<Allocator, DeleteAllocator> allocator_;
  std::size_t regions_ = 0;
  std::uint64_t checked_ = 0;  // the end of what was checked (regions below it are in use)
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_ARENA_H_
