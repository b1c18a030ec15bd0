#include "pool/detail/shared_segment.h"

#include <unistd.h>

#include <atomic>
#include <boost/interprocess/anonymous_shared_memory.hpp>
#include <boost/interprocess/permissions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <random>
#include <utility>

namespace pool::detail {
namespace bip = boost::interprocess;

namespace {

std::string unique_name() {
  static std::atomic<unsigned long> counter{0};
  static const unsigned long salt = std::random_device{}();
  return std::string(kSegmentPrefix) + std::to_string(::getpid()) + "-" +
         std::to_string(counter.fetch_add(1)) + "-" + std::to_string(salt);
}

}  // namespace

SharedSegment::SharedSegment(SharedSegment&& other) noexcept
    : size_(std::exchange(other.size_, 0)),
      name_(std::move(other.name_)),
      creator_(std::exchange(other.creator_, 0)) {
  region_.swap(other.region_);
  other.name_.clear();
}

SharedSegment& SharedSegment::operator=(SharedSegment&& other) noexcept {
  if (this != &other) {
    unlink();
    bip::mapped_region empty;
    region_.swap(empty);
    region_.swap(other.region_);
    size_ = std::exchange(other.size_, 0);
    name_ = std::move(other.name_);
    other.name_.clear();
    creator_ = std::exchange(other.creator_, 0);
  }
  return *this;
}

SharedSegment::~SharedSegment() { unlink(); }

SharedSegment SharedSegment::anonymous(std::size_t size) {
  SharedSegment segment;
  bip::mapped_region region = bip::anonymous_shared_memory(size);
  segment.region_.swap(region);
  segment.size_ = size;
  return segment;
}

SharedSegment SharedSegment::create_named(std::size_t size) {
  SharedSegment segment;
  segment.name_ = unique_name();
  segment.creator_ = ::getpid();
  bip::permissions owner_only(0600);
  // From here the destructor unlinks the name, also when truncate or mapping throws.
  bip::shared_memory_object object(bip::create_only, segment.name_.c_str(), bip::read_write,
                                   owner_only);
  object.truncate(static_cast<bip::offset_t>(size));
  bip::mapped_region region(object, bip::read_write, 0, size);
  segment.region_.swap(region);
  segment.size_ = size;
  return segment;
}

SharedSegment SharedSegment::open_named(const std::string& name, std::size_t size) {
  SharedSegment segment;
  bip::shared_memory_object object(bip::open_only, name.c_str(), bip::read_write);
  bip::mapped_region region(object, bip::read_write, 0, size);
  segment.region_.swap(region);
  segment.size_ = size;
  return segment;
}

void SharedSegment::unlink() {
  if (!name_.empty() && creator_ == ::getpid()) {
    bip::shared_memory_object::remove(name_.c_str());
  }
  name_.clear();
}

}  // namespace pool::detail
