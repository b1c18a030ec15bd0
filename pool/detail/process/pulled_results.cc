#include "pool/detail/process/pulled_results.h"

#include <sys/mman.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <new>

namespace pool::detail {

namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kFirstBlock = std::size_t{8} << 20;
}  // namespace

PulledResults::~PulledResults() {
  for (const Block& block : blocks_) ::munmap(block.data, block.size);
}

std::byte* PulledResults::allocate(std::size_t bytes) {
  bytes = (bytes + 63) / 64 * 64;
  while (current_ < blocks_.size() && blocks_[current_].size - used_ < bytes) {
    ++current_;
    used_ = 0;
  }
  if (current_ == blocks_.size()) {
    const std::size_t last = blocks_.empty() ? kFirstBlock / 2 : blocks_.back().size;
    const std::size_t size = (std::max(bytes, 2 * last) + kHugePage - 1) / kHugePage * kHugePage;
    // Reserved only: pages exist once written. 2 MiB more so that the block can start aligned.
    void* mapping = ::mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) throw std::bad_alloc();
    auto* begin = static_cast<std::byte*>(mapping);
    auto* aligned = reinterpret_cast<std::byte*>(
        (reinterpret_cast<std::uintptr_t>(begin) + kHugePage - 1) / kHugePage * kHugePage);
    if (aligned != begin) ::munmap(begin, static_cast<std::size_t>(aligned - begin));
    const std::size_t tail = kHugePage - static_cast<std::size_t>(aligned - begin);
    if (tail != 0) ::munmap(aligned + size, tail);
    // Advice only: where transparent huge pages are off, 4 KiB pages serve.
    ::madvise(aligned, size, MADV_HUGEPAGE);
    blocks_.push_back(Block{aligned, size});
    used_ = 0;
  }
  std::byte* space = blocks_[current_].data + used_;
  used_ += bytes;
  return space;
}

int pull_bytes(pid_t pid, std::uint64_t address, std::byte* into, std::size_t size) {
  while (size > 0) {
    iovec local{into, size};
    iovec remote{reinterpret_cast<void*>(address), size};
    const ssize_t got = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (got == 0) return EFAULT;
    into += got;
    address += static_cast<std::uint64_t>(got);
    size -= static_cast<std::size_t>(got);
  }
  return 0;
}

bool can_pull_from(pid_t pid) {
  // Any address mapped in the child serves: it is a fork of this process.
  static const std::uint64_t probe = 0x706f6f6cU;
  std::uint64_t copy = 0;
  return pull_bytes(pid, reinterpret_cast<std::uint64_t>(&probe),
                    reinterpret_cast<std::byte*>(&copy), sizeof copy) == 0 &&
         copy == probe;
}

}  // namespace pool::detail
