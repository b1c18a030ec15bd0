// The same task code on every pool: the slow series on processes, GIL threads and free threads,
// and how much each pool's tasks overlap. What every pool promises is tests/pool_contract.h.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "examples/slow_series.h"
#include "pool/pool.h"
#include "tests/leak_check.h"
#include "tests/pool_types.h"
#include "tests/shared_object.h"

namespace {

using examples::DigitMethod;

// Counts how many tasks are inside a section at once. It lives in a shared anonymous mapping made
// before any pool, so forked workers update the very same counters.
struct OverlapMeter {
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  std::atomic<int> started{0};  // tasks begun but not finished
  std::atomic<int> most_started{0};

  static void raise_to(std::atomic<int>& most, int value) {
    int seen = most.load();
    while (value > seen && !most.compare_exchange_weak(seen, value)) {
    }
  }
  void enter() { raise_to(most, ++inside); }
  void leave() { --inside; }
  void begin_task() { raise_to(most_started, ++started); }
  void end_task() { --started; }
};

using SharedMeter = pool::testing::SharedObject<OverlapMeter>;

void spin_for(std::chrono::microseconds duration) {
  const auto until = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < until) {
  }
}

// CPU work in short sections with a checkpoint between them, like a Python loop.
struct SpinningTask {
  OverlapMeter* meter;
  int sections;
  int operator()(int task) const {
    meter->begin_task();
    for (int s = 0; s < sections; ++s) {
      meter->enter();
      spin_for(std::chrono::microseconds(200));
      meter->leave();
      pool::gil::checkpoint();
    }
    meter->end_task();
    return task;
  }
};

struct SleepingTask {
  OverlapMeter* meter;
  int operator()(int task) const {
    meter->enter();
    pool::gil::sleep_for(std::chrono::milliseconds(50));
    meter->leave();
    return task;
  }
};

template <class P>
class EveryPool : public pool::testing::NoLeftoversTest {};

TYPED_TEST_SUITE(EveryPool, pool::testing::AllPools, pool::testing::PoolName);

TYPED_TEST(EveryPool, SlowSeriesSumEqualsTheSerialSumOnOneToFourWorkers) {
  constexpr std::int64_t kN = 1'000'000;
  const double serial = examples::slow_series_partial_sum({1, kN}, DigitMethod::kInteger);
  for (int ncores = 1; ncores <= 4; ++ncores) {
    TypeParam workers(ncores);
    ASSERT_EQ(workers.size(), ncores);
    EXPECT_NEAR(examples::slow_series_sum(workers, kN, DigitMethod::kInteger), serial,
                1e-12 * serial)
        << ncores << " workers";
  }
}

using GilThreadPoolTest = pool::testing::NoLeftoversTest;
using FreeThreadPoolTest = pool::testing::NoLeftoversTest;
using ProcessPoolOverlap = pool::testing::NoLeftoversTest;

TEST_F(GilThreadPoolTest, CpuSectionsNeverOverlap) {
  SharedMeter meter;
  pool::GilThreadPool workers(2);
  workers.map(SpinningTask{meter.get(), 50}, pool::range(0, 4), 1);
  EXPECT_EQ(meter.get()->most.load(), 1);
}

TEST_F(GilThreadPoolTest, LongTasksInterleaveAtCheckpoints) {
  SharedMeter meter;
  pool::GilThreadPool workers(2, std::chrono::milliseconds(1));
  // Each task takes about 20 ms; after 1 ms a checkpoint hands the lock to the other thread, so
  // the second task starts before the first one ends, even though their CPU sections never overlap.
  workers.map(SpinningTask{meter.get(), 100}, pool::range(0, 2), 1);
  EXPECT_EQ(meter.get()->most_started.load(), 2);
  EXPECT_EQ(meter.get()->most.load(), 1);
}

TEST_F(GilThreadPoolTest, SleepingTasksOverlapBecauseSleepReleasesTheLock) {
  SharedMeter meter;
  pool::GilThreadPool workers(2);
  workers.map(SleepingTask{meter.get()}, pool::range(0, 4), 1);
  EXPECT_EQ(meter.get()->most.load(), 2);
}

TEST_F(GilThreadPoolTest, TaskCodeHoldsTheLockAndAReleasedScopeGivesItUp) {
  pool::GilThreadPool workers(2);
  const auto held = workers.map(
      [](int) {
        const bool in_task = pool::gil::held_by_this_thread();
        bool in_released = true;
        {
          pool::gil::Released released;
          in_released = pool::gil::held_by_this_thread();
        }
        return in_task && !in_released && pool::gil::held_by_this_thread();
      },
      pool::range(0, 4), 1);
  EXPECT_EQ(held, (std::vector<bool>{true, true, true, true}));
  EXPECT_FALSE(pool::gil::held_by_this_thread());
}

TEST_F(GilThreadPoolTest, SwitchIntervalIsSettable) {
  pool::GilThreadPool workers(2);
  EXPECT_EQ(workers.switch_interval(), std::chrono::milliseconds(5));
  workers.set_switch_interval(std::chrono::microseconds(250));
  EXPECT_EQ(workers.switch_interval(), std::chrono::microseconds(250));
}

TEST_F(FreeThreadPoolTest, CpuSectionsOverlapOnTwoThreads) {
  SharedMeter meter;
  pool::FreeThreadPool workers(2);
  workers.map(SpinningTask{meter.get(), 50}, pool::range(0, 4), 1);
  EXPECT_EQ(meter.get()->most.load(), 2);
  const auto held =
      workers.map([](int) { return pool::gil::held_by_this_thread(); }, pool::range(0, 2));
  EXPECT_EQ(held, (std::vector<bool>{false, false}));
}

TEST_F(ProcessPoolOverlap, CpuSectionsOverlapOnTwoWorkers) {
  SharedMeter meter;  // mapped before the fork, so the workers share it
  pool::ProcessPool workers(2);
  workers.map(SpinningTask{meter.get(), 50}, pool::range(0, 4), 1);
  EXPECT_EQ(meter.get()->most.load(), 2);
}

}  // namespace
