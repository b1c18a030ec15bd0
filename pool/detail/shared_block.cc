#include "pool/detail/shared_block.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace pool::detail {
namespace {

constexpr std::uint64_t kBlockMagic = 0x706f6f6c2d617272;  // "pool-arr"

struct alignas(kBlockAlignment) BlockHeader {
  std::uint64_t magic;
  std::uint64_t token;
  std::atomic<std::uint32_t> alive;
};
static_assert(sizeof(BlockHeader) == kBlockAlignment);

struct MappedBlock {
  std::uint64_t token;
  BlockHeader* header;
  std::size_t mapped_bytes;
  bool owned;      // by an OwnedSharedBlock of this process
  int fd;          // the memfd, while owned
  bool populated;  // this process mapped every page already (see attach)
};

// Per process; a forked child gets a copy that describes the mappings it inherited.
struct Registry {
  std::mutex mutex;
  std::vector<MappedBlock> blocks;
  pid_t pid = ::getpid();
  std::uint64_t next_token = std::random_device{}() | 1;
};

// Set once the registry exists (a forked child inherits it with the registry).
std::atomic<Registry*> g_registry{nullptr};

Registry& registry() {
  static Registry* const instance = [] {
    auto* created = new Registry;  // never destroyed: blocks may outlive static destructors
    ::pthread_atfork([] { registry().mutex.lock(); }, [] { registry().mutex.unlock(); },
                     [] {
                       Registry& child = registry();
                       child.pid = ::getpid();
                       // The parent's blocks are only inherited here; the parent destroys them.
                       for (MappedBlock& block : child.blocks) {
                         if (block.owned) ::close(block.fd);  // would keep the memory alive
                         block.owned = false;
                         block.fd = -1;
                         block.populated = false;
                       }
                       child.mutex.unlock();
                     });
    g_registry.store(created, std::memory_order_release);
    return created;
  }();
  return *instance;
}

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), "pool::SharedArray: " + what);
}

[[noreturn]] void throw_gone() {
  throw std::runtime_error(
      "pool::SharedSpan: its SharedArray no longer exists (it was destroyed, or its creating "
      "process exited)");
}

}  // namespace

pid_t current_pid() { return registry().pid; }

OwnedSharedBlock::OwnedSharedBlock(std::size_t bytes) {
  const std::size_t mapped_bytes = sizeof(BlockHeader) + bytes;
  const int fd = ::memfd_create("pool-shared-array", MFD_CLOEXEC);
  if (fd < 0) throw_errno("memfd_create");
  if (::ftruncate(fd, static_cast<off_t>(mapped_bytes)) != 0) {
    const int error = errno;
    ::close(fd);
    errno = error;
    throw_errno("cannot size " + std::to_string(bytes) + " bytes of shared memory");
  }
  void* address = ::mmap(nullptr, mapped_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (address == MAP_FAILED) {
    const int error = errno;
    ::close(fd);
    errno = error;
    throw_errno("cannot map " + std::to_string(bytes) + " bytes of shared memory");
  }
  Registry& processes = registry();
  std::lock_guard lock(processes.mutex);
  const std::uint64_t token = processes.next_token++;
  auto* header = ::new (address) BlockHeader{kBlockMagic, token, {1}};
  processes.blocks.push_back(MappedBlock{token, header, mapped_bytes, true, fd, true});
  data_ = reinterpret_cast<std::byte*>(address) + sizeof(BlockHeader);
  ref_ = SharedBlockRef{processes.pid, fd, token, bytes};
}

OwnedSharedBlock::OwnedSharedBlock(OwnedSharedBlock&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), ref_(std::exchange(other.ref_, {})) {}

OwnedSharedBlock& OwnedSharedBlock::operator=(OwnedSharedBlock&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    ref_ = std::exchange(other.ref_, {});
  }
  return *this;
}

OwnedSharedBlock::~OwnedSharedBlock() { release(); }

void OwnedSharedBlock::release() noexcept {
  if (data_ == nullptr) return;
  Registry& processes = registry();
  std::lock_guard lock(processes.mutex);
  if (processes.pid == ref_.creator) {
    auto* header = reinterpret_cast<BlockHeader*>(data_ - sizeof(BlockHeader));
    header->alive.store(0, std::memory_order_release);
    auto found = std::find_if(processes.blocks.begin(), processes.blocks.end(),
                              [&](const MappedBlock& block) { return block.token == ref_.token; });
    if (found != processes.blocks.end()) {
      ::munmap(found->header, found->mapped_bytes);
      processes.blocks.erase(found);
    }
    ::close(ref_.fd);
  }
  // In a forked child the object is a copy of the parent's: the parent owns the block.
  data_ = nullptr;
  ref_ = {};
}

std::byte* attach(const SharedBlockRef& ref) {
  Registry& processes = registry();
  std::lock_guard lock(processes.mutex);
  for (MappedBlock& block : processes.blocks) {
    if (block.token == ref.token) {
      if (block.header->alive.load(std::memory_order_acquire) == 0) throw_gone();
      if (!block.populated) {
        // Inherited from the parent: fork() copies no page-table entries of shared memory. Best
        // effort, as MAP_POPULATE below (kernels before 5.14 lack it).
        ::madvise(block.header, block.mapped_bytes, MADV_POPULATE_WRITE);
        block.populated = true;
      }
      return reinterpret_cast<std::byte*>(block.header) + sizeof(BlockHeader);
    }
  }
  if (ref.creator == processes.pid || ref.fd < 0) throw_gone();
  const std::string path = "/proc/" + std::to_string(ref.creator) + "/fd/" + std::to_string(ref.fd);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) throw_gone();
    throw_errno("cannot open " + path);
  }
  const std::size_t mapped_bytes = sizeof(BlockHeader) + ref.bytes;
  struct stat status {};
  void* address = MAP_FAILED;
  if (::fstat(fd, &status) == 0 && static_cast<std::size_t>(status.st_size) == mapped_bytes) {
    // Populated in one go: a page fault per page is what a worker would otherwise pay on first
    // touch (about 6 us each on virtual machines, where it dwarfs the arithmetic on the page).
    address =
        ::mmap(nullptr, mapped_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  }
  ::close(fd);  // the mapping keeps the memory
  if (address == MAP_FAILED) throw_gone();
  auto* header = static_cast<BlockHeader*>(address);
  if (header->magic != kBlockMagic || header->token != ref.token ||
      header->alive.load(std::memory_order_acquire) == 0) {
    ::munmap(address, mapped_bytes);
    throw_gone();  // the descriptor number now names another file
  }
  processes.blocks.push_back(MappedBlock{ref.token, header, mapped_bytes, false, -1, true});
  return static_cast<std::byte*>(address) + sizeof(BlockHeader);
}

void release_dead_blocks() noexcept {
  // A process that never saw a SharedArray has nothing to release, and making the registry would
  // cost a fresh worker its random token, fork handlers and page faults.
  Registry* const existing = g_registry.load(std::memory_order_acquire);
  if (existing == nullptr) return;
  Registry& processes = *existing;
  std::lock_guard lock(processes.mutex);
  std::erase_if(processes.blocks, [](const MappedBlock& block) {
    if (block.owned || block.header->alive.load(std::memory_order_acquire) != 0) return false;
    ::munmap(block.header, block.mapped_bytes);
    return true;
  });
}

std::size_t mapped_block_count() {
  Registry& processes = registry();
  std::lock_guard lock(processes.mutex);
  return processes.blocks.size();
}

}  // namespace pool::detail
