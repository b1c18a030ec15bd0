#include "pool/detail/process/shared_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace pool::detail {
namespace {

[[noreturn]] void throw_errno(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), "pool: " + what);
}

std::string bytes_text(std::size_t bytes) { return std::to_string(bytes) + " bytes"; }

}  // namespace

SharedSegment::SharedSegment(SharedSegment&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      fd_(std::exchange(other.fd_, -1)) {}

SharedSegment& SharedSegment::operator=(SharedSegment&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

SharedSegment::~SharedSegment() { release(); }

void SharedSegment::release() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
  data_ = nullptr;
  size_ = 0;
  fd_ = -1;
}

SharedSegment SharedSegment::create(std::size_t size) {
  const int fd = ::memfd_create("cpp-pool", MFD_CLOEXEC);
  if (fd < 0) throw_errno(errno, "memfd_create for " + bytes_text(size) + " of shared memory");
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int error = errno;
    ::close(fd);
    throw_errno(error, "cannot size " + bytes_text(size) + " of shared memory");
  }
  return adopt(fd, size);
}

SharedSegment SharedSegment::adopt(int fd, std::size_t size) {
  void* address = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (address == MAP_FAILED) {
    const int error = errno;
    ::close(fd);
    throw_errno(error, "cannot map " + bytes_text(size) + " of shared memory");
  }
  SharedSegment segment;
  segment.data_ = static_cast<std::byte*>(address);
  segment.size_ = size;
  segment.fd_ = fd;
  return segment;
}

}  // namespace pool::detail
