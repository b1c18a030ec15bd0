#include "pool/detail/process/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>

namespace pool::detail {

namespace {
constexpr std::uintptr_t kHugePage = std::uintptr_t{2} << 20;
constexpr std::size_t kWorthIt = std::size_t{4} << 20;
}  // namespace

void advise_huge_pages(void* data, std::size_t bytes) {
  if (data == nullptr || bytes < kWorthIt) return;
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1);
  const std::uintptr_t last = (begin + bytes) & ~(kHugePage - 1);
  if (last <= first) return;
  // Advice only: an old kernel or THP set to "never" just keeps 4 KiB pages.
  ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
}

void populate_huge_pages(void* data, std::size_t bytes) {
  advise_huge_pages(data, bytes);
  if (data == nullptr || bytes == 0) return;
  constexpr std::uintptr_t kPage = 4096;
  const auto begin = reinterpret_cast<std::uintptr_t>(data) & ~(kPage - 1);
  const auto end = reinterpret_cast<std::uintptr_t>(data) + bytes;
#ifdef MADV_POPULATE_WRITE
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
#else
  ::madvise(reinterpret_cast<void*>(begin), end - begin, 23);  // MADV_POPULATE_WRITE
#endif
}

}  // namespace pool::detail
