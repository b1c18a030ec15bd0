#include "examples/slow_series.h"

#include <cmath>
#include <functional>
#include <numeric>

#include "pool/pool.h"
#include "tests/leak_check.h"

namespace {

using SlowSeries = pool::testing::NoLeftoversTest;
using examples::DigitMethod;
using examples::Interval;

constexpr std::int64_t kN = 1'000'000;

TEST_F(SlowSeries, PartitionCoversOneToNExactlyAsTheCourseDoes) {
  EXPECT_EQ(examples::partition(100'000'000, 2),
            (std::vector<Interval>{{1, 50'000'000}, {50'000'001, 100'000'000}}));
  EXPECT_EQ(examples::partition(10, 3), (std::vector<Interval>{{1, 3}, {4, 6}, {7, 10}}));
  EXPECT_EQ(examples::format_intervals(examples::partition(10, 2)), "[(1, 5), (6, 10)]");
}

TEST_F(SlowSeries, SkipsEveryTermWhoseDigitsContainANine) {
  // 1..20 without 9 and 19.
  double expected = 0;
  for (int k = 1; k <= 20; ++k) {
    if (k != 9 && k != 19) expected += 1.0 / k;
  }
  EXPECT_DOUBLE_EQ(examples::slow_series_partial_sum({1, 20}, DigitMethod::kInteger), expected);
  EXPECT_DOUBLE_EQ(examples::slow_series_partial_sum({1, 20}, DigitMethod::kString), expected);
  EXPECT_EQ(examples::slow_series_partial_sum({90, 99}, DigitMethod::kInteger), 0.0);
}

TEST_F(SlowSeries, ProcessPoolSumEqualsTheSerialSumOnOneTwoAndThreeWorkers) {
  const double serial = examples::slow_series_partial_sum({1, kN}, DigitMethod::kInteger);
  ASSERT_GT(serial, 10.0);
  for (int ncores : {1, 2, 3}) {
    pool::ProcessPool workers(ncores);
    const auto partial =
        workers.map(examples::PartialSum{DigitMethod::kInteger}, examples::partition(kN, ncores));
    ASSERT_EQ(partial.size(), static_cast<std::size_t>(ncores));
    const double sum = std::accumulate(partial.begin(), partial.end(), 0.0);
    EXPECT_NEAR(sum, serial, 1e-12 * serial) << ncores << " workers";
  }
}

TEST_F(SlowSeries, MapReduceOverTheTermsEqualsTheSerialSum) {
  const std::int64_t n = 300000;
  const double serial = examples::slow_series_partial_sum({1, n}, examples::DigitMethod::kInteger);
  pool::ProcessPool workers(2);
  const double reduced = workers.map_reduce(
      examples::SlowSeriesTerm{}, pool::range(std::int64_t{1}, n + 1), std::plus<>(), 0.0);
  EXPECT_NEAR(reduced, serial, 1e-12);
}

TEST_F(SlowSeries, StringAndIntegerMethodsAgree) {
  pool::ProcessPool workers(2);
  const auto by_integer =
      workers.map(examples::PartialSum{DigitMethod::kInteger}, examples::partition(100'000, 2));
  const auto by_string =
      workers.map(examples::PartialSum{DigitMethod::kString}, examples::partition(100'000, 2));
  EXPECT_EQ(by_integer, by_string);
}

}  // namespace
