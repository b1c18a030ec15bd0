// How every pool cuts a call into chunks, and how far ahead of its reader a stream runs: one
// policy, the same on threads, processes and ranks.
#ifndef POOL_DETAIL_CHUNKING_H_
#define POOL_DETAIL_CHUNKING_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <ranges>

namespace pool::detail {

// ceil(items / chunksize) without the overflow of (items + chunksize - 1) / chunksize, which
// makes a huge chunksize (SIZE_MAX: "one chunk") zero chunks. A chunksize of 0 counts as 1.
inline std::uint64_t chunk_count(std::uint64_t items, std::uint64_t chunksize) {
  if (chunksize == 0) return items;
  return items / chunksize + (items % chunksize != 0 ? 1 : 0);
}

// Python's Pool.map rule: ceil(len / (4 * workers)), at least 1.
inline std::size_t default_chunksize(std::size_t items, std::size_t workers) {
  const std::size_t per = 4 * (workers == 0 ? 1 : workers);
  const std::size_t chunk = static_cast<std::size_t>(chunk_count(items, per));
  return chunk == 0 ? 1 : chunk;
}

// A stream's (imap, map_reduce) chunksize: as given, else map's default for a sized input and 1
// for an unsized one.
template <class Range>
std::size_t stream_chunksize(Range& inputs, std::size_t workers, std::size_t chunksize) {
  if (chunksize != 0) return chunksize;
  if constexpr (std::ranges::sized_range<Range>) {
    return default_chunksize(static_cast<std::size_t>(std::ranges::size(inputs)), workers);
  } else {
    return 1;
  }
}

// A stream (stream_engine.h) keeps about two batches ahead of its reader. A batch holds whole
// chunks, about kStreamBatchItems items and at least 8 chunks per worker: enough to keep every
// worker busy while the reader catches up. A huge chunksize makes one batch of everything.
inline constexpr std::size_t kStreamBatchItems = 4096;
inline std::size_t stream_batch_items(std::size_t workers, std::size_t chunksize) {
  const std::size_t chunks =
      std::max<std::size_t>(8 * std::max<std::size_t>(workers, 1),
                            static_cast<std::size_t>(chunk_count(kStreamBatchItems, chunksize)));
  return chunksize > SIZE_MAX / chunks ? SIZE_MAX : chunks * chunksize;
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_CHUNKING_H_
