// The thread pools' own behaviour beside the contract every pool shares (tests/pool_contract.h):
// a result's timeout, a dropped stream waiting for its running tasks, and the GIL. No test asserts
// on wall-clock time: overlap is counted, and waits that would hang if the pool misbehaved give
// up after a generous deadline so that the test fails instead.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <vector>

#include "pool/pool.h"
#include "tests/pool_types.h"

namespace {

using namespace std::chrono_literals;

constexpr auto kPatience = 10s;  // how long a test waits for what must happen before it fails

// Shut until open(); tasks wait on it without holding the GIL.
class Gate {
 public:
  void open() { open_.store(true); }
  // False if the gate stayed shut for kPatience.
  bool wait() const {
    const auto until = std::chrono::steady_clock::now() + kPatience;
    while (!open_.load()) {
      if (std::chrono::steady_clock::now() > until) return false;
      pool::gil::sleep_for(1ms);
    }
    return true;
  }

 private:
  std::atomic<bool> open_{false};
};

// How many tasks run at once, at most.
struct Concurrency {
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  void enter() {
    const int now = ++inside;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
  }
  void leave() { --inside; }
};

void spin_for(std::chrono::microseconds duration) {
  const auto until = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < until) {
  }
}

template <class P>
class ThreadPoolApi : public ::testing::Test {};

TYPED_TEST_SUITE(ThreadPoolApi, pool::testing::ThreadPools, pool::testing::PoolName);

// Kept per pool: on MpiPool in a job of one rank, rank 0 runs the tasks inside ready(), wait()
// and get(timeout), which then return late instead of timing out (see mpi_pool_test).
TYPED_TEST(ThreadPoolApi, MapAsyncResultIsNotReadyUntilItsTasksFinish) {
  TypeParam workers(2);
  Gate gate;
  auto result = workers.map_async(
      [&gate](int x) {
        if (!gate.wait()) throw std::runtime_error("gate never opened");
        return 2 * x;
      },
      std::vector<int>{1, 2, 3}, 1);  // a temporary: map_async keeps its own copy
  EXPECT_FALSE(result.ready());
  EXPECT_FALSE(result.wait(20ms));
  EXPECT_THROW(result.get(20ms), pool::TimeoutError);
  EXPECT_THROW(result.successful(), std::logic_error);
  gate.open();
  EXPECT_EQ(result.get(), (std::vector<int>{2, 4, 6}));
  EXPECT_TRUE(result.ready());
  EXPECT_TRUE(result.successful());
  EXPECT_TRUE(result.wait(1ms));
  EXPECT_EQ(result.get(1s), (std::vector<int>{2, 4, 6}));
}

// A dropped stream waits for its running tasks: none runs once the stream is gone.
TYPED_TEST(ThreadPoolApi, DroppingAStreamWaitsForItsRunningTasks) {
  TypeParam workers(2);
  std::atomic<int> done{0};
  std::atomic<int> running{0};
  {
    auto stream = workers.imap(
        [&](int x) {
          ++running;
          pool::gil::sleep_for(2ms);
          --running;
          ++done;
          return x;
        },
        pool::range(0, 100'000));
    for (int i = 0; i < 10; ++i) ASSERT_EQ(stream.next(), std::optional<int>(i));
  }
  EXPECT_EQ(running.load(), 0) << "the stream's destructor waits for the running tasks";
  const int done_at_destruction = done.load();
  EXPECT_EQ(workers.map([](int x) { return x; }, pool::range(0, 8), 1).size(), 8u);
  EXPECT_EQ(done.load(), done_at_destruction) << "a task ran after the stream was dropped";
}

TYPED_TEST(ThreadPoolApi, CallbacksHoldTheGilOnlyOnTheGilPool) {
  TypeParam workers(2);
  std::atomic<bool> held{false};
  workers
      .apply_async([] { return 1; }, pool::args(),
                   [&](const int&) { held = pool::gil::held_by_this_thread(); })
      .get();
  EXPECT_EQ(held.load(), (std::is_same_v<TypeParam, pool::GilThreadPool>));
}

// A running thread cannot be killed: a task that takes a std::stop_token is asked to stop instead.
TYPED_TEST(ThreadPoolApi, CancelAsksARunningTaskThatTakesAStopTokenToStop) {
  TypeParam workers(2);
  std::atomic<bool> started{false};
  auto future = workers.submit(
      [&started](std::stop_token stop, int limit_ms) {
        started = true;
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
        while (!stop.stop_requested()) {
          if (std::chrono::steady_clock::now() > until) return -1;
          pool::gil::sleep_for(1ms);
        }
        return 1;
      },
      10'000);
  const auto until = std::chrono::steady_clock::now() + kPatience;
  while (!started && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(started.load());
  EXPECT_FALSE(future.cancel()) << "it runs: only asked to stop";
  EXPECT_EQ(future.result(), 1) << "the task saw the stop request and returned early";
  EXPECT_FALSE(future.cancelled());
  EXPECT_FALSE(future.cancel(pool::kill_running)) << "threads are not killed";
}

TYPED_TEST(ThreadPoolApi, AStopTokenTaskCancelledBeforeItStartsNeverRuns) {
  TypeParam workers(1);
  Gate gate;
  std::atomic<int> runs{0};
  auto blocker = workers.submit([&gate] { return gate.wait(); });
  auto future = workers.submit(
      [&runs](std::stop_token, int x) {
        ++runs;
        return x;
      },
      3);
  EXPECT_TRUE(future.cancel());
  EXPECT_TRUE(future.cancelled());
  gate.open();
  EXPECT_TRUE(blocker.get());
  EXPECT_THROW(future.get(), pool::CancelledError);
  EXPECT_EQ(workers.map([](int x) { return x; }, pool::range(0, 3)), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(runs.load(), 0);
}

using GilThreadPoolApi = ::testing::Test;

TEST_F(GilThreadPoolApi, CpuBoundAsyncCallsNeverOverlap) {
  pool::GilThreadPool workers(4);
  Concurrency concurrency;
  std::vector<pool::AsyncResult<void>> results;
  for (int i = 0; i < 8; ++i) {
    results.push_back(workers.apply_async([&] {
      for (int section = 0; section < 20; ++section) {
        concurrency.enter();
        spin_for(200us);
        concurrency.leave();
        pool::gil::checkpoint();
      }
    }));
  }
  for (auto& result : results) result.get();
  EXPECT_EQ(concurrency.most.load(), 1);
}

}  // namespace
