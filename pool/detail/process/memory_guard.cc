#include "pool/detail/process/memory_guard.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>

namespace pool::detail {

MemoryGuard::MemoryGuard(std::uint64_t limit_bytes) : limit_(limit_bytes) {
  if (limit_ != 0) statm_ = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
}

MemoryGuard::~MemoryGuard() {
  if (statm_ >= 0) ::close(statm_);
}

bool MemoryGuard::over_slow() {
  if (over_) return true;
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  const std::int64_t tick = static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
  if (tick == last_tick_ || statm_ < 0) return false;
  last_tick_ = tick;
  char text[128];
  const ssize_t size = ::pread(statm_, text, sizeof(text) - 1, 0);
  if (size <= 0) return false;
  text[size] = '\0';
  // "size resident shared ...", in pages.
  char* end = nullptr;
  std::strtoull(text, &end, 10);
  const std::uint64_t resident_pages = std::strtoull(end, nullptr, 10);
  over_ = resident_pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) > limit_;
  return over_;
}

}  // namespace pool::detail
