// A ProcessPool made inside an OpenMP program after a parallel region: libgomp keeps its team of
// threads alive, so an unset start method picks the forkserver, and spawn works too; an explicit
// fork is refused rather than copying the team's state into workers.
#include <gtest/gtest.h>
#include <omp.h>

#include <stdexcept>
#include <vector>

#include "pool/pool.h"
#include "tests/leak_check.h"

namespace pool::testing {
namespace {

long square(long x) { return x * x; }

class OpenMpProgram : public NoLeftoversTest {
 protected:
  void SetUp() override {
    // A parallel region of two threads: libgomp keeps them for the next region.
    int threads = 0;
#pragma omp parallel num_threads(2)
    {
#pragma omp atomic
      ++threads;
    }
    ASSERT_EQ(threads, 2);
  }
};

const std::vector<long> kSquares{0, 1, 4, 9, 16, 25};

TEST_F(OpenMpProgram, AnUnsetStartMethodPicksTheForkserverAndMaps) {
  ProcessPool workers(2);
  EXPECT_EQ(workers.start_method(), Start::forkserver);
  EXPECT_EQ(workers.map(square, pool::range(0L, 6L)), kSquares);
}

TEST_F(OpenMpProgram, SpawnedWorkersMapAndMayRunParallelRegionsOfTheirOwn) {
  ProcessPoolOptions options;
  options.start = Start::spawn;
  ProcessPool workers(2, options);
  const std::vector<int> teams = workers.map(
      [](int) {
        int threads = 0;
#pragma omp parallel num_threads(2)
        {
#pragma omp atomic
          ++threads;
        }
        return threads;
      },
      pool::range(0, 4));
  EXPECT_EQ(teams, std::vector<int>(4, 2));
  EXPECT_EQ(workers.map(square, pool::range(0L, 6L)), kSquares);
}

TEST_F(OpenMpProgram, AnExplicitForkIsRefused) {
  ProcessPoolOptions options;
  options.start = Start::fork;
  EXPECT_THROW(ProcessPool(2, options), std::logic_error);
}

}  // namespace
}  // namespace pool::testing
