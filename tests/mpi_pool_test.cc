// pool::MpiPool under mpirun (tests/mpi_run.sh runs it on 3 ranks and on 1). Only rank 0 runs
// the tests: the other ranks serve every pool from the first line of main.
#include "pool/mpi_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "examples/slow_series.h"
#include "pool/errors.h"
#include "pool/pool_concept.h"
#include "pool/range.h"

namespace {

using examples::DigitMethod;

static_assert(pool::Pool<pool::MpiPool>, "code written against pool::Pool runs on MpiPool");

int expected_workers() { return std::max(1, pool::MpiPool::world_size() - 1); }

long square(long x) { return x * x; }

TEST(MpiPool, UsesEveryRankButRankZeroAsAWorker) {
  pool::MpiPool workers;
  EXPECT_EQ(pool::MpiPool::rank(), 0);
  EXPECT_EQ(workers.size(), expected_workers());
}

TEST(MpiPool, MapKeepsInputOrderForEveryChunksize) {
  pool::MpiPool workers;
  std::vector<long> expected(1000);
  for (long i = 0; i < 1000; ++i) expected[static_cast<std::size_t>(i)] = i * i;
  for (std::size_t chunksize : {0, 1, 7, 999, 5000}) {
    EXPECT_EQ(workers.map(square, pool::range(0L, 1000L), chunksize), expected) << chunksize;
  }
  std::vector<long> inputs(1000);
  std::iota(inputs.begin(), inputs.end(), 0L);
  EXPECT_EQ(workers.map([](long x) { return x * x; }, inputs, 3), expected);
}

TEST(MpiPool, MapOfAnEmptyInputIsEmpty) {
  pool::MpiPool workers;
  EXPECT_TRUE(workers.map(square, std::vector<long>{}).empty());
  EXPECT_TRUE(workers.map(square, pool::range(5L, 5L)).empty());
}

TEST(MpiPool, SerializedArgumentsAndResultsTravelIntact) {
  pool::MpiPool workers;
  std::vector<std::string> words;
  for (int i = 0; i < 200; ++i) words.push_back(std::string(static_cast<std::size_t>(i), 'x'));
  const auto lengths = workers.map(
      [](const std::string& word) { return std::vector<int>(word.size(), 1); }, words, 9);
  ASSERT_EQ(lengths.size(), words.size());
  for (std::size_t i = 0; i < words.size(); ++i) EXPECT_EQ(lengths[i].size(), i);
  const auto shouted = workers.map([](const std::string& word) { return word + "!"; }, words, 0);
  for (std::size_t i = 0; i < words.size(); ++i) EXPECT_EQ(shouted[i], words[i] + "!");
}

TEST(MpiPool, CapturedValuesTravelWithTheFunction) {
  pool::MpiPool workers;
  const long offset = 1000;
  const double scale = 0.5;
  const auto shifted =
      workers.map([offset, scale](long x) { return scale * (x + offset); }, pool::range(0L, 10L));
  for (long x = 0; x < 10; ++x) EXPECT_EQ(shifted[static_cast<std::size_t>(x)], 0.5 * (x + 1000));
}

TEST(MpiPool, StarmapApplyAndAsyncCallsGiveTheirResults) {
  pool::MpiPool workers;
  const std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
  EXPECT_EQ(workers.starmap([](int a, int b) { return a * b; }, pairs),
            (std::vector<int>{2, 12, 30}));
  EXPECT_EQ(workers.apply([](int a, int b) { return a - b; }, 10, 3), 7);
  workers.apply([](int) {}, 1);  // void
  std::vector<long> seen;
  auto async = workers.map_async(square, pool::range(0L, 5L), 1,
                                 [&](const std::vector<long>& values) { seen = values; });
  EXPECT_EQ(async.get(), (std::vector<long>{0, 1, 4, 9, 16}));
  EXPECT_EQ(seen, (std::vector<long>{0, 1, 4, 9, 16}));
  auto one = workers.apply_async(square, 12L);
  auto two = workers.apply_async(square, 13L);
  EXPECT_EQ(two.get() + one.get(), 144 + 169);
}

TEST(MpiPool, ImapYieldsInInputOrderAndReadsUnsizedInputs) {
  pool::MpiPool workers;
  for (std::size_t chunksize : {1, 7}) {
    std::vector<long> got;
    for (long value : workers.imap(square, pool::range(0L, 300L), chunksize)) got.push_back(value);
    ASSERT_EQ(got.size(), 300u);
    for (long i = 0; i < 300; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], i * i);
  }
  auto odd = std::views::iota(0L, 1000L) | std::views::filter([](long x) { return x % 2 == 1; });
  long sum = 0;
  std::size_t count = 0;
  for (long value : workers.imap([](long x) { return x + 1; }, odd, 10)) {
    sum += value;
    ++count;
  }
  EXPECT_EQ(count, 500u);
  EXPECT_EQ(sum, 500L * 500L + 500L);
}

TEST(MpiPool, ImapUnorderedYieldsEveryIndexOnce) {
  pool::MpiPool workers;
  std::set<std::size_t> indices;
  for (auto [index, value] : workers.imap_unordered(square, pool::range(0L, 200L), 3)) {
    EXPECT_EQ(value, static_cast<long>(index * index));
    EXPECT_TRUE(indices.insert(index).second);
  }
  EXPECT_EQ(indices.size(), 200u);
}

TEST(MpiPool, MapReduceEqualsTheSerialFold) {
  pool::MpiPool workers;
  const long n = 100000;
  long serial = 0;
  for (long x = 0; x < n; ++x) serial += x * x % 7;
  for (std::size_t chunksize : {0, 1000, 3}) {
    EXPECT_EQ(workers.map_reduce([](long x) { return x * x % 7; }, pool::range(0L, n),
                                 std::plus<>(), 0L, chunksize),
              serial);
  }
  // The fold keeps input order: string concatenation is associative, not commutative.
  const std::string letters =
      workers.map_reduce([](int i) { return std::string(1, static_cast<char>('a' + i % 26)); },
                         pool::range(0, 52), std::plus<>(), std::string(), 5);
  EXPECT_EQ(letters, "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
}

TEST(MpiPool, SlowSeriesOverIntervalsEqualsTheSerialSumAndProcessPoolPartition) {
  constexpr std::int64_t kN = 1'000'000;
  pool::MpiPool workers;
  const double serial = examples::slow_series_partial_sum({1, kN}, DigitMethod::kInteger);
  double partitioned = 0.0;  // the same intervals summed in one process
  for (const auto& interval : examples::partition(kN, workers.size())) {
    partitioned += examples::slow_series_partial_sum(interval, DigitMethod::kInteger);
  }
  const double sum = examples::slow_series_sum(workers, kN, DigitMethod::kInteger);
  EXPECT_EQ(sum, partitioned);
  EXPECT_NEAR(sum, serial, 1e-12 * serial);
  const double folded =
      workers.map_reduce(examples::SlowSeriesTerm{DigitMethod::kInteger},
                         pool::range(std::int64_t{1}, kN + 1), std::plus<>(), 0.0);
  EXPECT_NEAR(folded, serial, 1e-12 * serial);
}

TEST(MpiPool, ARankThatFinishesGetsTheNextChunk) {
  if (expected_workers() < 2) GTEST_SKIP() << "needs two worker ranks";
  pool::MpiPool workers;
  // Item 0 is slow; the other rank should run nearly everything else meanwhile.
  const auto ranks = workers.map(
      [](int item) {
        std::this_thread::sleep_for(std::chrono::milliseconds(item == 0 ? 600 : 5));
        return pool::MpiPool::rank();
      },
      pool::range(0, 40), 1);
  std::map<int, int> items_per_rank;
  for (int rank : ranks) ++items_per_rank[rank];
  EXPECT_NE(ranks[0], 0);
  EXPECT_LE(items_per_rank[ranks[0]], static_cast<int>(pool::detail::MpiPoolCore::kChunksPerRank));
  EXPECT_EQ(items_per_rank.size(), 2u);
}

TEST(MpiPool, ATaskThatThrowsFailsTheCallWithTheLowestIndexAndThePoolGoesOn) {
  pool::MpiPool workers;
  try {
    workers.map(
        [](int x) {
          if (x == 37 || x == 81) throw std::out_of_range("bad item " + std::to_string(x));
          return x;
        },
        pool::range(0, 100), 5);
    FAIL() << "no TaskError";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 37);
    EXPECT_EQ(error.type_name(), "std::out_of_range");
    EXPECT_EQ(error.message(), "bad item 37");
  }
  EXPECT_EQ(workers.map(square, pool::range(0L, 4L)), (std::vector<long>{0, 1, 4, 9}));
  EXPECT_THROW(workers.map_reduce(
                   [](int x) {
                     if (x == 500) throw std::runtime_error("no");
                     return x;
                   },
                   pool::range(0, 1000), std::plus<>(), 0),
               pool::TaskError);
  EXPECT_THROW(workers.apply([] { throw std::runtime_error("no"); }), pool::TaskError);
}

TEST(MpiPool, ImapYieldsEveryResultBeforeAFailureThenThrows) {
  pool::MpiPool workers;
  std::vector<int> got;
  try {
    for (int value : workers.imap(
             [](int x) {
               if (x == 50) throw std::runtime_error("fifty");
               return x;
             },
             pool::range(0, 100), 4)) {
      got.push_back(value);
    }
    FAIL() << "no TaskError";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 50);
  }
  ASSERT_EQ(got.size(), 48u);  // the chunks 0..47 before the failing chunk [48, 52)
  for (int i = 0; i < 48; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], i);
}

TEST(MpiPool, AStreamLeftEarlyLeavesThePoolUsable) {
  pool::MpiPool workers;
  {
    auto stream = workers.imap(square, pool::range(0L, 100000L), 10);
    EXPECT_EQ(*stream.next(), 0);
  }
  EXPECT_EQ(workers.map(square, pool::range(0L, 3L)), (std::vector<long>{0, 1, 4}));
}

TEST(MpiPool, CloseRefusesNewCallsAndJoinWaitsForTheSubmittedOnes) {
  pool::MpiPool workers;
  auto pending = workers.map_async(square, pool::range(0L, 50L), 1);
  EXPECT_THROW(workers.join(), std::logic_error);
  workers.close();
  EXPECT_THROW(workers.map(square, pool::range(0L, 3L)), pool::PoolNotRunning);
  workers.join();
  EXPECT_EQ(pending.get().size(), 50u);
}

TEST(MpiPool, TerminateFailsUnfinishedCallsAndANewPoolWorks) {
  {
    pool::MpiPool workers;
    auto slow = workers.map_async(
        [](int x) {
          usleep(20000);
          return x;
        },
        pool::range(0, 200), 1);
    workers.terminate();
    EXPECT_THROW(slow.get(), pool::PoolNotRunning);
    EXPECT_THROW(workers.map(square, pool::range(0L, 3L)), pool::PoolNotRunning);
  }
  pool::MpiPool again;
  EXPECT_EQ(again.map(square, pool::range(0L, 3L)), (std::vector<long>{0, 1, 4}));
}

TEST(MpiPool, OnePoolAtATimeAndNoMoreWorkersThanRanks) {
  {
    pool::MpiPool workers;
    EXPECT_THROW(pool::MpiPool second, std::logic_error);
  }
  EXPECT_THROW(pool::MpiPool(expected_workers() + 1), std::invalid_argument);
  EXPECT_THROW(pool::MpiPool(-1), std::invalid_argument);
  pool::MpiPool one(1);
  EXPECT_EQ(one.size(), 1);
  EXPECT_EQ(one.map(square, pool::range(0L, 20L), 1).size(), 20u);
}

}  // namespace

int main(int argc, char** argv) {
  pool::MpiPool::serve_workers();  // worker ranks stay here until rank 0 finalizes MPI
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
