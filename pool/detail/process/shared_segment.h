// One shared-memory mapping, owned by one object: a memfd (an anonymous shared-memory file)
// mapped MAP_SHARED.
//
// A memfd has no name in /dev/shm, so nothing the pool makes can be left behind there, whatever
// kills its processes, and its size never depends on the size of /dev/shm (Docker gives
// containers 64 MiB). Workers forked after the creation inherit the mapping; a segment made later
// travels to them as a descriptor over their socket (SCM_RIGHTS) and is mapped with adopt(). The
// memory is freed when the last mapping and descriptor are gone.
//
// Pages are allocated on first touch, so a large segment costs nothing until used. Allocating
// them up front (fallocate) would not make running out of memory an error: in a memory cgroup the
// kernel answers with the OOM killer, not ENOMEM. Callers check what memory is available first.
#ifndef POOL_DETAIL_PROCESS_SHARED_SEGMENT_H_
#define POOL_DETAIL_PROCESS_SHARED_SEGMENT_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace pool::detail {

class SharedSegment {
 public:
  SharedSegment() = default;
  SharedSegment(SharedSegment&& other) noexcept;
  SharedSegment& operator=(SharedSegment&& other) noexcept;
  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;
  ~SharedSegment();

  // `size` bytes of zero-filled shared memory. Throws std::system_error when the kernel refuses.
  static SharedSegment create(std::size_t size);
  // Maps `size` bytes of a memfd another process sent; takes ownership of `fd`.
  static SharedSegment adopt(int fd, std::size_t size);

  std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  // The memfd, to pass to another process; -1 when empty.
  int fd() const { return fd_; }

 private:
  void release() noexcept;

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  int fd_ = -1;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_SHARED_SEGMENT_H_
