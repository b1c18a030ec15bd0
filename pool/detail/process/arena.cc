#include "pool/detail/process/arena.h"

#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>
#include <new>
#include <string>
#include <utility>

#include "pool/detail/memory_limits.h"

namespace pool::detail {
namespace bip = boost::interprocess;

// The parent is the only allocating process, so the allocator needs no lock.
struct Arena::Allocator {
  using Buffer =
      bip::basic_managed_external_buffer<char, bip::rbtree_best_fit<bip::null_mutex_family>,
                                         bip::iset_index>;
  Buffer buffer;
  Allocator(void* base, std::size_t size) : buffer(bip::create_only, base, size) {}
};

void Arena::DeleteAllocator::operator()(Allocator* allocator) const { delete allocator; }

Arena::Arena(SharedSegment segment)
    : segment_(std::move(segment)), allocator_(new Allocator(segment_.data(), segment_.size())) {}

Arena::Arena(Arena&& other) noexcept
    : segment_(std::move(other.segment_)),
      allocator_(std::move(other.allocator_)),
      regions_(std::exchange(other.regions_, 0)),
      checked_(std::exchange(other.checked_, 0)) {}

// The allocator goes before the mapping it lives in.
Arena& Arena::operator=(Arena&& other) noexcept {
  if (this != &other) {
    allocator_.reset();
    segment_ = std::move(other.segment_);
    allocator_ = std::move(other.allocator_);
    regions_ = std::exchange(other.regions_, 0);
    checked_ = std::exchange(other.checked_, 0);
  }
  return *this;
}

Arena::~Arena() { allocator_.reset(); }

std::optional<std::uint64_t> Arena::allocate(std::size_t bytes) {
  void* region = allocator_->buffer.allocate_aligned(bytes == 0 ? 1 : bytes, 64, std::nothrow);
  if (region == nullptr) return std::nullopt;
  ++regions_;
  return static_cast<std::uint64_t>(static_cast<std::byte*>(region) - segment_.data());
}

void Arena::free(std::uint64_t offset) {
  allocator_->buffer.deallocate(segment_.data() + offset);
  --regions_;
}

void Arena::check_memory(std::uint64_t offset, std::size_t bytes) {
  // The allocator fills the segment from its start, so one growing prefix covers every region:
  // the check costs nothing once the arena is warm. Reading the kernel's and the cgroups' figures
  // takes about 250 us, so the prefix is checked 16 MiB at a time, not at every small call.
  constexpr std::uint64_t kUncheckedBytes = std::uint64_t{16} << 20;
  const std::uint64_t end = offset + bytes;
  if (end <= checked_ + kUncheckedBytes) return;
  check_memory_available(end - checked_,
                         "a call's arguments and results (" + describe_bytes(bytes) + ")");
  checked_ = end;
}

std::size_t Arena::space_for(std::size_t bytes) { return bytes + bytes / 8 + 4096; }

}  // namespace pool::detail
