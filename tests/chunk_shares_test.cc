// The per-worker chunk shares with stealing (pool/detail/process/chunk_shares.h), raced by threads:
// the same atomics the worker processes use in shared memory.
#include "pool/detail/process/chunk_shares.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace pool::detail {
namespace {

// Runs `workers` threads taking chunks of [0, chunks) until none is left below `floor`; returns how
// often each chunk was taken.
std::vector<int> take_all(std::uint64_t workers, std::uint64_t chunks, std::uint64_t floor) {
  std::vector<ChunkShare> shares(workers);
  init_chunk_shares(shares.data(), workers, chunks);
  std::vector<std::atomic<int>> taken(chunks);
  std::vector<std::thread> threads;
  for (std::uint64_t w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      std::uint64_t chunk = 0;
      while (take_chunk(shares.data(), workers, w, floor, chunk)) {
        taken[chunk].fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return std::vector<int>(taken.begin(), taken.end());
}

TEST(ChunkShares, EveryChunkIsTakenExactlyOnceUnderStealing) {
  for (std::uint64_t workers : {2u, 3u, 8u}) {
    for (int round = 0; round < 20; ++round) {
      const std::vector<int> taken = take_all(workers, 50'000, kNoFailureFloor);
      for (std::size_t c = 0; c < taken.size(); ++c) {
        ASSERT_EQ(taken[c], 1) << "chunk " << c << " with " << workers << " workers";
      }
    }
  }
}

TEST(ChunkShares, ChunksBelowTheFailureFloorRunAndNoneAtOrAboveIt) {
  const std::vector<int> taken = take_all(4, 10'000, 6'000);
  for (std::size_t c = 0; c < taken.size(); ++c) {
    ASSERT_EQ(taken[c], c < 6'000 ? 1 : 0) << "chunk " << c;
  }
}

TEST(ChunkShares, AWorkerWithAnEmptyShareStealsTheLastChunkOfAnother) {
  std::vector<ChunkShare> shares(2);
  init_chunk_shares(shares.data(), 2, 2);  // one chunk each
  std::uint64_t chunk = 99;
  ASSERT_TRUE(take_chunk(shares.data(), 2, 0, kNoFailureFloor, chunk));
  EXPECT_EQ(chunk, 0u);
  ASSERT_TRUE(take_chunk(shares.data(), 2, 0, kNoFailureFloor, chunk));
  EXPECT_EQ(chunk, 1u);  // worker 1's, stolen
  EXPECT_FALSE(take_chunk(shares.data(), 2, 1, kNoFailureFloor, chunk));
}

TEST(ChunkShares, SmallJobsAndRecyclingPoolsKeepOneCursor) {
  EXPECT_FALSE(uses_chunk_shares(4 * 16, 16, false));  // default chunking: about 4 per worker
  EXPECT_TRUE(uses_chunk_shares(1'000'000, 16, false));
  EXPECT_FALSE(uses_chunk_shares(1'000'000, 16, true));  // maxtasksperchild
  EXPECT_FALSE(uses_chunk_shares(1'000'000, 1, false));
  EXPECT_FALSE(uses_chunk_shares(std::uint64_t{1} << 32, 16, false));  // beyond 32-bit indices
}

}  // namespace
}  // namespace pool::detail
