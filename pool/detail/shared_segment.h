// One shared-memory mapping (Boost.Interprocess), owned by one object.
//
// anonymous(): MAP_SHARED|MAP_ANONYMOUS memory, created before fork so workers inherit it; it has
// no name and so can never be left behind. create_named(): a segment created after the workers
// were forked, with mode 0600 and a unique name; the creator unlinks the name as soon as every
// worker has mapped it (or on destruction), so nothing outlives the pool. Pages are allocated on
// first touch, so a large segment costs nothing until used.
#ifndef POOL_DETAIL_SHARED_SEGMENT_H_
#define POOL_DETAIL_SHARED_SEGMENT_H_

#include <sys/types.h>

#include <boost/interprocess/mapped_region.hpp>
#include <cstddef>
#include <string>

namespace pool::detail {

// Every named segment of ours starts with this, followed by the creating process's pid.
inline constexpr const char* kSegmentPrefix = "cpp-pool-";

class SharedSegment {
 public:
  SharedSegment() = default;
  SharedSegment(SharedSegment&& other) noexcept;
  SharedSegment& operator=(SharedSegment&& other) noexcept;
  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;
  ~SharedSegment();

  static SharedSegment anonymous(std::size_t size);
  static SharedSegment create_named(std::size_t size);
  // Maps a segment another process created; the opener never unlinks it.
  static SharedSegment open_named(const std::string& name, std::size_t size);

  std::byte* data() const { return static_cast<std::byte*>(region_.get_address()); }
  std::size_t size() const { return size_; }
  // Empty once unlinked (or for anonymous and opened segments).
  const std::string& name() const { return name_; }
  // Removes the name; the mapping stays valid. Only the creating process does it.
  void unlink();

 private:
  boost::interprocess::mapped_region region_;
  std::size_t size_ = 0;
  std::string name_;
  pid_t creator_ = 0;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_SHARED_SEGMENT_H_
