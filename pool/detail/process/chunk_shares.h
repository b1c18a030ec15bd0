// Each worker's own share of a job's chunk indices, with stealing when it runs out: how a job of
// many small chunks is handed out without every worker hitting one shared cursor per chunk (the
// shape of TBB's and Taskflow's schedulers). Worker w starts with the w-th contiguous slice; it
// takes from the front of its own share, on its own cache line; a worker whose share is empty
// takes the back half of the largest other share. Shares live in shared memory beside the job's
// slot, so this works across processes: each is one 64-bit word (begin << 32 | end) changed only
// by CAS.
//
// After a task fails at chunk f, the failure floor: chunks below f still run (a lower chunk may
// fail too, and the lowest failure is the one reported, as with one cursor handing out chunks in
// order) and chunks at or above it are dropped.
#ifndef POOL_DETAIL_PROCESS_CHUNK_SHARES_H_
#define POOL_DETAIL_PROCESS_CHUNK_SHARES_H_

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace pool::detail {

struct alignas(64) ChunkShare {
  std::atomic<std::uint64_t> range{0};
};

inline constexpr std::uint64_t kNoFailureFloor = ~std::uint64_t{0};
// Below this many chunks per worker one shared cursor costs nothing worth avoiding (default
// chunking makes about 4 per worker), and scanning every share for a job of a few chunks would
// cost more than it saves.
inline constexpr std::uint64_t kSharesFromChunksPerWorker = 64;

// Whether a job of `chunks` chunks on `workers` workers is handed out in shares. Not with
// maxtasksperchild or max_memory_per_child: a worker leaving mid-job would strand its share.
inline bool uses_chunk_shares(std::uint64_t chunks, std::uint64_t workers, bool recycles_workers) {
  return workers > 1 && !recycles_workers && chunks >= kSharesFromChunksPerWorker * workers &&
         chunks < (std::uint64_t{1} << 32);
}

namespace chunk_shares_internal {

constexpr std::uint64_t pack(std::uint64_t begin, std::uint64_t end) { return begin << 32 | end; }
constexpr std::uint64_t begin_of(std::uint64_t range) { return range >> 32; }
constexpr std::uint64_t end_of(std::uint64_t range) { return range & 0xffffffffu; }
// Chunks of `range` below `floor`.
constexpr std::uint64_t available(std::uint64_t range, std::uint64_t floor) {
  const std::uint64_t end = std::min(end_of(range), floor);
  return begin_of(range) < end ? end - begin_of(range) : 0;
}

}  // namespace chunk_shares_internal

// Splits [0, chunks) into `workers` contiguous shares; the parent calls it before posting.
inline void init_chunk_shares(ChunkShare* shares, std::uint64_t workers, std::uint64_t chunks) {
  for (std::uint64_t w = 0; w < workers; ++w) {
    new (shares + w) ChunkShare;
    shares[w].range.store(
        chunk_shares_internal::pack(chunks * w / workers, chunks * (w + 1) / workers),
        std::memory_order_relaxed);
  }
}

// Takes worker `me`'s next chunk below `floor` into `chunk`: from its own share, else stolen.
// False when no share holds a chunk below the floor.
inline bool take_chunk(ChunkShare* shares, std::uint64_t workers, std::uint64_t me,
                       std::uint64_t floor, std::uint64_t& chunk) {
  using namespace chunk_shares_internal;
  std::atomic<std::uint64_t>& own = shares[me].range;
  std::uint64_t mine = own.load(std::memory_order_relaxed);
  while (available(mine, floor) > 0) {
    if (own.compare_exchange_weak(mine, pack(begin_of(mine) + 1, end_of(mine)),
                                  std::memory_order_acq_rel, std::memory_order_relaxed)) {
      chunk = begin_of(mine);
      return true;
    }
  }
  for (;;) {
    std::uint64_t victim = workers;
    std::uint64_t seen = 0;
    std::uint64_t most = 0;
    for (std::uint64_t w = 0; w < workers; ++w) {
      if (w == me) continue;
      const std::uint64_t range = shares[w].range.load(std::memory_order_relaxed);
      if (available(range, floor) > most) {
        victim = w;
        seen = range;
        most = available(range, floor);
      }
    }
    if (victim == workers) return false;
    // The back half, rounded up, so that a share of one chunk can be taken.
    const std::uint64_t kept = most / 2;
    const std::uint64_t from = begin_of(seen) + kept;
    if (!shares[victim].range.compare_exchange_strong(seen, pack(begin_of(seen), from),
                                                      std::memory_order_acq_rel,
                                                      std::memory_order_relaxed)) {
      continue;  // its owner or another thief moved first: look again
    }
    chunk = from;
    // The rest becomes this worker's share (it held nothing below the floor; what it held above
    // is never run).
    const std::uint64_t rest = pack(from + 1, from + most - kept);
    while (!own.compare_exchange_weak(mine, rest, std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
    }
    return true;
  }
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_CHUNK_SHARES_H_
