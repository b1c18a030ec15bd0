// Sizes that cannot exist: a range longer than its iterators can measure, a map whose results
// overflow 64 bits or exceed the machine's memory, a chunksize that overflows the chunk count. Each
// is refused before anything is posted, with an error that names the sizes, and the pool is left
// as it was: the next call works.
#include <climits>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "pool/detail/memory_limits.h"
#include "pool/pool.h"
#include "tests/leak_check.h"
#include "tests/pool_types.h"

namespace {

using ImpossibleSizes = pool::testing::NoLeftoversTest;

constexpr long kTiB = 1L << 40;

long twice(long x) { return 2 * x; }

std::vector<long> doubled(long n) {
  std::vector<long> values;
  for (long x = 0; x < n; ++x) values.push_back(2 * x);
  return values;
}

// what() of the std::length_error or OutOfMemory that `call` throws; a failure for anything else,
// a crash or a call that returns.
template <class Call>
std::string impossible_size_error(Call&& call) {
  try {
    call();
    ADD_FAILURE() << "the call returned";
  } catch (const std::length_error& error) {
    return error.what();
  } catch (const pool::OutOfMemory& error) {
    return error.what();
  } catch (const std::exception& error) {
    ADD_FAILURE() << "the call threw something else: " << error.what();
  }
  return {};
}

TEST_F(ImpossibleSizes, ARangeLongerThanPtrdiffIsRejectedWhenMadeNamingItsBounds) {
  try {
    (void)pool::range(-1L, INT64_MAX);
    ADD_FAILURE() << "range(-1, INT64_MAX) was made";
  } catch (const std::length_error& error) {
    EXPECT_NE(std::string(error.what()).find("(-1, 9223372036854775807)"), std::string::npos)
        << error.what();
  }
  try {
    (void)pool::range(0UL, ULONG_MAX);
    ADD_FAILURE() << "range(0, ULONG_MAX) was made";
  } catch (const std::length_error& error) {
    EXPECT_NE(std::string(error.what()).find("(0, 18446744073709551615)"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW((void)pool::range(INT64_MIN, 0L), std::length_error);  // 2^63 items
  EXPECT_THROW((void)pool::range(INT64_MIN, INT64_MAX), std::length_error);
}

TEST_F(ImpossibleSizes, ValidRangesHaveTheirTrueSizeWhateverTheIntegerType) {
  // int's length overflows int: the size must not.
  const auto ints = pool::range(INT_MIN, INT_MAX);
  EXPECT_EQ(ints.size(), 4294967295u);
  EXPECT_EQ(ints.end() - ints.begin(), 4294967295);
  EXPECT_EQ(ints[4294967294u], INT_MAX - 1);

  const auto longest = pool::range(INT64_MIN, -1L);
  EXPECT_EQ(longest.size(), static_cast<std::size_t>(PTRDIFF_MAX));
  EXPECT_EQ(longest.end() - longest.begin(), PTRDIFF_MAX);
  EXPECT_EQ(longest.begin() - longest.end(), -PTRDIFF_MAX);
  EXPECT_EQ(longest.begin()[PTRDIFF_MAX - 1], -2L);

  // Across the sign bit of the unsigned type.
  const unsigned long middle = 1UL << 63;
  const auto unsigned_longs = pool::range(middle - 5, middle + 5);
  EXPECT_EQ(unsigned_longs.size(), 10u);
  EXPECT_EQ(unsigned_longs.end() - unsigned_longs.begin(), 10);
  EXPECT_EQ(unsigned_longs.begin() - unsigned_longs.end(), -10);
  EXPECT_EQ(unsigned_longs[7], middle + 2);
  EXPECT_EQ(*(unsigned_longs.end() - 1), middle + 4);
  EXPECT_EQ(std::ranges::distance(unsigned_longs), 10);

  const auto small = pool::range(std::int8_t{-128}, std::int8_t{127});
  EXPECT_EQ(small.size(), 255u);
  EXPECT_EQ(small.begin() - small.end(), -255);
  EXPECT_EQ(pool::range(0UL, static_cast<unsigned long>(PTRDIFF_MAX)).size(),
            static_cast<std::size_t>(PTRDIFF_MAX));
  EXPECT_TRUE(pool::range(5L, -5L).empty());
  static_assert(pool::range(3, 10).size() == 7, "a Range stays usable in constant expressions");
}

TEST_F(ImpossibleSizes, CheckedArithmeticNamesWhatOverflowed) {
  EXPECT_EQ(pool::detail::checked_product(1UL << 31, 1UL << 32, "x"), 1UL << 63);
  EXPECT_EQ(pool::detail::checked_sum(UINT64_MAX - 1, 1, "x"), UINT64_MAX);
  try {
    pool::detail::checked_product(1UL << 62, 8, "map's results");
    ADD_FAILURE() << "2^62 x 8 fit in 64 bits";
  } catch (const std::length_error& error) {
    EXPECT_NE(std::string(error.what()).find("map's results"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("4611686018427387904 x 8"), std::string::npos);
  }
  EXPECT_THROW(pool::detail::checked_sum(UINT64_MAX, 1, "x"), std::length_error);
}

TEST_F(ImpossibleSizes, MemoryLimitIsAtMostMemoryAndSwapAndRequestsAboveItThrow) {
  const std::uint64_t limit = pool::detail::memory_limit_bytes();
  EXPECT_GT(limit, 16u << 20);
  EXPECT_LT(limit, 1UL << 50);  // no machine running this test has a petabyte
  EXPECT_NO_THROW(pool::detail::check_memory_request(limit, "all of it"));
  try {
    pool::detail::check_memory_request(limit + 1, "a test's buffer");
    ADD_FAILURE() << "one byte over the limit was granted";
  } catch (const pool::OutOfMemory& error) {
    EXPECT_EQ(error.requested_bytes(), limit + 1);
    EXPECT_EQ(error.limit_bytes(), limit);
    const std::string what = error.what();
    EXPECT_NE(what.find("a test's buffer"), std::string::npos) << what;
    EXPECT_NE(what.find(std::to_string(limit + 1) + " bytes"), std::string::npos) << what;
    EXPECT_NE(what.find(pool::detail::describe_bytes(limit)), std::string::npos) << what;
  }
  EXPECT_EQ(pool::detail::describe_bytes(100), "100 bytes");
  EXPECT_EQ(pool::detail::describe_bytes(512UL << 20), "512.0 MiB");
  EXPECT_EQ(pool::detail::describe_bytes(8UL << 40), "8.0 TiB");
  EXPECT_EQ(pool::detail::describe_bytes(1536), "1.5 KiB");
}

// The same contract on every pool.
template <class P>
class EveryPool : public pool::testing::NoLeftoversTest {};

TYPED_TEST_SUITE(EveryPool, pool::testing::AllPools, pool::testing::PoolName);

TYPED_TEST(EveryPool, AMapWhoseResultsOverflowSixtyFourBitsThrowsNamingItsSizeAndThePoolWorks) {
  TypeParam workers(2);
  const std::string what =
      impossible_size_error([&] { (void)workers.map(twice, pool::range(0L, 1L << 62)); });
  EXPECT_NE(what.find("4611686018427387904"), std::string::npos) << what;
  EXPECT_EQ(workers.map(twice, pool::range(0L, 100L)), doubled(100));
}

TYPED_TEST(EveryPool, AMapLargerThanMemoryThrowsOutOfMemoryNamingTheBytesAndThePoolWorks) {
  TypeParam workers(2);
  try {
    (void)workers.map(twice, pool::range(0L, kTiB));
    ADD_FAILURE() << "a map of 8 TiB of results was accepted";
  } catch (const pool::OutOfMemory& error) {
    EXPECT_GE(error.requested_bytes(), 8UL << 40);
    EXPECT_EQ(error.limit_bytes(), pool::detail::memory_limit_bytes());
    const std::string what = error.what();
    EXPECT_NE(what.find("map"), std::string::npos) << what;
    EXPECT_NE(what.find(std::to_string(error.requested_bytes()) + " bytes"), std::string::npos)
        << what;
    EXPECT_NE(what.find("TiB"), std::string::npos) << what;
  } catch (const std::exception& error) {
    ADD_FAILURE() << "not OutOfMemory: " << error.what();
  }
  EXPECT_EQ(workers.map(twice, pool::range(0L, 1000L)), doubled(1000));
}

TYPED_TEST(EveryPool, MapAsyncRefusesAnImpossibleMapAtTheCallWithNothingPosted) {
  TypeParam workers(2);
  EXPECT_THROW((void)workers.map_async(twice, pool::range(0L, kTiB)), pool::OutOfMemory);
  const std::string what =
      impossible_size_error([&] { (void)workers.map_async(twice, pool::range(0L, 1L << 62)); });
  EXPECT_NE(what.find("4611686018427387904"), std::string::npos) << what;
  EXPECT_EQ(workers.map_async(twice, pool::range(0L, 100L)).get(), doubled(100));
}

TYPED_TEST(EveryPool, AHugeChunksizeRunsASmallInputAsOneChunk) {
  TypeParam workers(2);
  const std::vector<long> inputs = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  EXPECT_EQ(workers.map(twice, pool::range(0L, 10L), SIZE_MAX), doubled(10));
  EXPECT_EQ(workers.map(twice, inputs, SIZE_MAX), doubled(10));
  EXPECT_EQ(workers.map_async(twice, inputs, SIZE_MAX).get(), doubled(10));
  EXPECT_EQ(workers.imap(twice, pool::range(0L, 10L), SIZE_MAX).collect(), doubled(10));
  // chunksize x chunks per batch wraps to 0 here.
  EXPECT_EQ(workers.imap(twice, inputs, std::size_t{1} << 62).collect(), doubled(10));
  EXPECT_EQ(workers.map_reduce(twice, pool::range(0L, 10L), std::plus<>(), 0L, SIZE_MAX), 90);
}

TYPED_TEST(EveryPool, StreamsOverAHugeLazyRangeAreNotRefused) {
  TypeParam workers(2);
  {
    auto stream = workers.imap(twice, pool::range(0L, 1L << 62));
    std::vector<long> first;
    for (long value : stream) {
      first.push_back(value);
      if (first.size() == 5) break;
    }
    EXPECT_EQ(first, doubled(5));
  }  // dropped: the work not started is cancelled
  // Every item from 1000 on fails at once, so the huge chunks end quickly.
  const auto until_1000 = [](long x) {
    if (x >= 1000) throw std::out_of_range("stop");
    return x;
  };
  try {
    (void)workers.map_reduce(until_1000, pool::range(0L, 1L << 62), std::plus<>(), 0L);
    ADD_FAILURE() << "map_reduce returned";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 1000);
  }
  EXPECT_EQ(workers.map(twice, pool::range(0L, 10L)), doubled(10));
}

}  // namespace
