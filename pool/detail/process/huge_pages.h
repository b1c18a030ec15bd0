// Transparent huge pages for large buffers the pool fills at once.
#ifndef POOL_DETAIL_PROCESS_HUGE_PAGES_H_
#define POOL_DETAIL_PROCESS_HUGE_PAGES_H_

#include <cstddef>

namespace pool::detail {

// Asks the kernel to back the 2 MiB-aligned interior of [data, data + bytes) with huge pages
// before it is first written (madvise MADV_HUGEPAGE), so that filling it takes one page fault per
// 2 MiB instead of one per 4 KiB. Buffers under a few MiB are left alone; where the kernel has
// transparent huge pages off, or refuses, nothing changes.
void advise_huge_pages(void* data, std::size_t bytes);

// advise_huge_pages, then every page of [data, data + bytes) made present and writable in one
// call (MADV_POPULATE_WRITE, Linux 5.14), which costs far less than faulting them one by one.
// Where the kernel lacks it, the pages are faulted when first written, as before.
void populate_huge_pages(void* data, std::size_t bytes);

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_HUGE_PAGES_H_
