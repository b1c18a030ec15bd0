// The memory behind pool::SharedArray: a memfd (an anonymous shared-memory file) mapped by its
// creator and, on first use, by any process of the same user that holds a SharedBlockRef to it.
//
// A memfd has no name in /dev/shm, so nothing can be left behind, even when every process is
// killed; its pages are freed when the last mapping and descriptor go. Another process reaches it
// through /proc/<creator>/fd/<fd>, which only the same user (or root) may open, and checks the
// block's token, so a reused descriptor number is never taken for the block. Children forked
// after the creation inherit the mapping and find it in their copy of the registry.
//
// The creator marks the block dead before unmapping it; other processes drop their mapping of a
// dead block at the next release_dead_blocks() (a pool worker calls it whenever it goes idle).
#ifndef POOL_DETAIL_SHARED_BLOCK_H_
#define POOL_DETAIL_SHARED_BLOCK_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace pool::detail {

// What a process needs to find a block; trivially copyable, so it travels inside task functions.
struct SharedBlockRef {
  pid_t creator = 0;
  int fd = -1;
  std::uint64_t token = 0;
  std::uint64_t bytes = 0;  // usable bytes, after the block's header
};

// Data starts this far into the block, so any T with alignof(T) <= kBlockAlignment is aligned.
inline constexpr std::size_t kBlockAlignment = 64;

// This process's id, kept current across fork() (getpid() is a system call).
pid_t current_pid();

// A block owned by this object: created zero-filled, marked dead and unmapped on destruction.
class OwnedSharedBlock {
 public:
  OwnedSharedBlock() = default;
  // Throws std::system_error if the memory cannot be created or mapped.
  explicit OwnedSharedBlock(std::size_t bytes);
  OwnedSharedBlock(OwnedSharedBlock&& other) noexcept;
  OwnedSharedBlock& operator=(OwnedSharedBlock&& other) noexcept;
  OwnedSharedBlock(const OwnedSharedBlock&) = delete;
  OwnedSharedBlock& operator=(const OwnedSharedBlock&) = delete;
  ~OwnedSharedBlock();

  std::byte* data() const { return data_; }
  const SharedBlockRef& ref() const { return ref_; }

 private:
  void release() noexcept;

  std::byte* data_ = nullptr;
  SharedBlockRef ref_;
};

// The block's data in this process, mapping it on first use. Throws std::runtime_error if the
// block no longer exists (its owner was destroyed) or cannot be opened.
std::byte* attach(const SharedBlockRef& block);

// Unmaps the blocks this process attached to or inherited whose owner has destroyed them.
void release_dead_blocks() noexcept;

// How many blocks this process has mapped (owned, attached or inherited), for tests.
std::size_t mapped_block_count();

}  // namespace pool::detail

#endif  // POOL_DETAIL_SHARED_BLOCK_H_
