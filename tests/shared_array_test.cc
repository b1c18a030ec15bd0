#include "pool/shared_array.h"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "pool/detail/shared_block.h"
#include "pool/pool.h"
#include "tests/leak_check.h"
#include "tests/pool_types.h"

namespace {

using pool::testing::EveryLocalPool;
using pool::testing::PoolName;

static_assert(std::is_trivially_copyable_v<pool::SharedSpan<double>>,
              "a span travels inside task functions as its bytes");

// The memfds of this process: what a SharedArray holds open.
int open_shared_array_descriptors() {
  int count = 0;
  DIR* directory = ::opendir("/proc/self/fd");
  if (directory == nullptr) return -1;
  while (dirent* entry = ::readdir(directory)) {
    char target[256];
    const std::string link = std::string("/proc/self/fd/") + entry->d_name;
    const ssize_t length = ::readlink(link.c_str(), target, sizeof(target) - 1);
    if (length <= 0) continue;
    if (std::string(target, static_cast<std::size_t>(length)).find("pool-shared-array") !=
        std::string::npos) {
      ++count;
    }
  }
  ::closedir(directory);
  return count;
}

template <class P>
class SharedArrayOnEveryPool : public pool::testing::NoLeftoversTest {};
TYPED_TEST_SUITE(SharedArrayOnEveryPool, EveryLocalPool, PoolName);

TYPED_TEST(SharedArrayOnEveryPool, WorkersWriteElementsTheCallerReads) {
  TypeParam workers(2);
  pool::SharedArray<std::int64_t> squares(1000);  // created after the workers were forked
  workers.map(
      [out = squares.span()](std::int64_t i) {
        out[static_cast<std::size_t>(i)] = i * i;
        return 0;
      },
      pool::range<std::int64_t>(0, 1000), 7);
  for (std::int64_t i = 0; i < 1000; ++i) ASSERT_EQ(squares[static_cast<std::size_t>(i)], i * i);
}

TYPED_TEST(SharedArrayOnEveryPool, WorkersReadWhatTheCallerWrote) {
  pool::SharedArray<double> values(500);
  std::iota(values.begin(), values.end(), 1.0);
  TypeParam workers(2);
  const std::vector<double> twice = workers.map(
      [in = values.span()](std::size_t i) { return 2 * in[i]; }, pool::range<std::size_t>(0, 500));
  for (std::size_t i = 0; i < 500; ++i) ASSERT_EQ(twice[i], 2.0 * (i + 1.0));
}

TYPED_TEST(SharedArrayOnEveryPool, CallerWritesBetweenCallsAreSeenByTheNextCall) {
  TypeParam workers(2);
  pool::SharedArray<int> cell(1);
  auto read = [in = cell.span()](int) { return in[0]; };
  cell[0] = 1;
  EXPECT_EQ(workers.map(read, pool::range(0, 4)), std::vector<int>(4, 1));
  cell[0] = 2;
  EXPECT_EQ(workers.map(read, pool::range(0, 4)), std::vector<int>(4, 2));
}

TYPED_TEST(SharedArrayOnEveryPool, SubspanAddressesItsPartOfTheArray) {
  TypeParam workers(2);
  pool::SharedArray<int> whole(100);
  const pool::SharedSpan<int> upper = whole.span().subspan(50);
  ASSERT_EQ(upper.size(), 50u);
  workers.map(
      [upper](std::size_t i) {
        upper[i] = static_cast<int>(i) + 1;
        return 0;
      },
      pool::range<std::size_t>(0, upper.size()));
  for (std::size_t i = 0; i < 50; ++i) ASSERT_EQ(whole[i], 0);
  for (std::size_t i = 50; i < 100; ++i) ASSERT_EQ(whole[i], static_cast<int>(i - 49));
}

TYPED_TEST(SharedArrayOnEveryPool, TasksMayTakeTheDataPointerOnceAndLoop) {
  TypeParam workers(2);
  pool::SharedArray<double> out(4 * 10'000);
  workers.map(
      [out = out.span()](std::size_t block) {
        double* first = out.subspan(block * 10'000, 10'000).data();
        for (std::size_t i = 0; i < 10'000; ++i) first[i] = static_cast<double>(block);
        return 0;
      },
      pool::range<std::size_t>(0, 4), 1);
  for (std::size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], static_cast<double>(i / 10'000));
}

using SharedArrayTest = pool::testing::NoLeftoversTest;

TEST_F(SharedArrayTest, StartsZeroFilledOrWithTheGivenValues) {
  pool::SharedArray<double> zeros(1 << 20);
  EXPECT_EQ(std::count(zeros.begin(), zeros.end(), 0.0), 1 << 20);
  pool::SharedArray<int> sevens(10, 7);
  EXPECT_EQ(std::vector<int>(sevens.begin(), sevens.end()), std::vector<int>(10, 7));
  pool::SharedArray<int> listed{3, 1, 4};
  EXPECT_EQ(std::vector<int>(listed.begin(), listed.end()), (std::vector<int>{3, 1, 4}));
  pool::SharedArray<int> empty(0);
  EXPECT_TRUE(empty.span().empty());
}

TEST_F(SharedArrayTest, ArraysCreatedBeforeTheForkAreInheritedByWorkers) {
  pool::SharedArray<int> marks(64);
  pool::ProcessPool workers(2);
  workers.map(
      [out = marks.span()](int i) {
        out[static_cast<std::size_t>(i)] = 1;
        return 0;
      },
      pool::range(0, 64), 1);
  EXPECT_EQ(std::count(marks.begin(), marks.end(), 1), 64);
}

TEST_F(SharedArrayTest, ReplacementWorkersReachArraysCreatedBeforeThey) {
  pool::ProcessPoolOptions options;
  options.maxtasksperchild = 1;  // every chunk on a freshly forked worker
  pool::ProcessPool workers(2, options);
  pool::SharedArray<int> pids(20);
  workers.map(
      [out = pids.span()](int i) {
        out[static_cast<std::size_t>(i)] = static_cast<int>(::getpid());
        return 0;
      },
      pool::range(0, 20), 1);
  EXPECT_EQ(std::count(pids.begin(), pids.end(), 0), 0);
  EXPECT_GT(std::set<int>(pids.begin(), pids.end()).size(), 2u);
}

TEST_F(SharedArrayTest, LeavesNothingInDevShmAndClosesItsMemoryOnDestruction) {
  const int before = open_shared_array_descriptors();
  {
    pool::ProcessPool workers(2);
    pool::SharedArray<double> values(1 << 16, 1.0);
    EXPECT_EQ(open_shared_array_descriptors(), before + 1);
    const auto read = workers.map([in = values.span()](int i) { return in[i]; }, pool::range(0, 8));
    EXPECT_EQ(read, std::vector<double>(8, 1.0));
    EXPECT_TRUE(pool::testing::shared_memory_named_by(::getpid()).empty());
  }
  EXPECT_EQ(open_shared_array_descriptors(), before);
  EXPECT_TRUE(pool::testing::shared_memory_named_by(::getpid()).empty());
}

TEST_F(SharedArrayTest, WorkersNeverHoldTheDescriptorsOfInheritedArrays) {
  pool::SharedArray<int> inherited(16);
  pool::ProcessPool workers(2);
  const auto held =
      workers.map([](int) { return open_shared_array_descriptors(); }, pool::range(0, 4), 1);
  EXPECT_EQ(held, std::vector<int>(4, 0));
}

TEST_F(SharedArrayTest, IdleWorkersUnmapArraysTheCallerDestroyed) {
  pool::ProcessPool workers(2);
  auto mapped = [](int) { return static_cast<int>(pool::detail::mapped_block_count()); };
  {
    pool::SharedArray<int> values(1024);
    const auto touched =
        workers.map([in = values.span()](int i) { return in[i]; }, pool::range(0, 2), 1);
    EXPECT_EQ(touched, std::vector<int>(2, 0));
  }
  // Workers let go of the array when they next go idle or wake up; poll until both did.
  std::vector<int> counts;
  for (int attempt = 0; attempt < 200; ++attempt) {
    counts = workers.map(mapped, pool::range(0, 2), 1);
    if (counts == std::vector<int>(2, 0)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(counts, std::vector<int>(2, 0));
}

TEST_F(SharedArrayTest, ASpanUsedAfterItsArrayWasDestroyedFailsTheTaskClearly) {
  pool::ProcessPool workers(2);
  pool::SharedSpan<int> dangling;
  {
    pool::SharedArray<int> values(8);
    dangling = values.span();
  }
  try {
    workers.map([dangling](int i) { return dangling[static_cast<std::size_t>(i)]; },
                pool::range(0, 2));
    FAIL() << "expected pool::TaskError";
  } catch (const pool::TaskError& error) {
    EXPECT_NE(std::string(error.what()).find("no longer exists"), std::string::npos)
        << error.what();
  }
}

TEST_F(SharedArrayTest, AMovedArrayKeepsItsElementsAndSpans) {
  pool::SharedArray<int> first(4, 9);
  const pool::SharedSpan<int> view = first.span();
  pool::SharedArray<int> second = std::move(first);
  EXPECT_EQ(second.size(), 4u);
  EXPECT_TRUE(first.empty());
  pool::ProcessPool workers(1);
  EXPECT_EQ(workers.apply([view] { return view[3]; }), 9);
}

}  // namespace
