// ProcessPool's own behaviour beside the contract every pool shares (tests/pool_contract.h): a
// result's timeout, callbacks that must not call their pool, an initializer that crashes or runs
// again in replacement workers, and maxtasksperchild.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pool/pool.h"
#include "tests/leak_check.h"
#include "tests/shared_object.h"

namespace {

using namespace std::chrono_literals;
using ProcessPoolApi = pool::testing::NoLeftoversTest;

// Counters in memory shared with the workers (mapped before the fork).
struct Counters {
  std::atomic<int> calls{0};
};

using SharedCounters = pool::testing::SharedObject<Counters>;

int square(int x) { return x * x; }

// ProcessPoolOptions with these set (designated initializers that skip a member warn).
pool::ProcessPoolOptions options_with(std::function<void()> initializer,
                                      std::uint64_t maxtasksperchild = 0) {
  pool::ProcessPoolOptions options;
  options.initializer = std::move(initializer);
  options.maxtasksperchild = maxtasksperchild;
  return options;
}

// Kept per pool: on MpiPool in a job of one rank, rank 0 runs the task inside get(10ms), which then
// returns the value late instead of throwing (see mpi_pool_test).
TEST_F(ProcessPoolApi, GetWithATimeoutThrowsTimeoutErrorWhileTheWorkGoesOn) {
  pool::ProcessPool workers(1);
  auto slow = workers.apply_async(
      [](int ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        return ms;
      },
      1000);
  EXPECT_THROW(slow.get(10ms), pool::TimeoutError);
  EXPECT_FALSE(slow.wait(1ms));
  EXPECT_FALSE(slow.ready());
  EXPECT_THROW(slow.successful(), std::logic_error);
  EXPECT_EQ(slow.get(), 1000);
}

// The misuse is reported on stderr; the result keeps the task's value (see
// callback_exceptions_test for callbacks that throw).
TEST_F(ProcessPoolApi, ACallbackCannotCallItsPool) {
  pool::ProcessPool workers(1);
  ::testing::internal::CaptureStderr();
  auto result = workers.apply_async(&square, pool::args(3),
                                    [&](const int&) { workers.map(&square, pool::range(0, 2)); });
  EXPECT_EQ(result.get(), 9);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find(
                "std::logic_error: pool: a callback cannot submit work to or wait on its "
                "ProcessPool"),
            std::string::npos);
  EXPECT_EQ(workers.apply(&square, 4), 16);
}

TEST_F(ProcessPoolApi, AnInitializerThatCrashesFailsTheConstructor) {
  EXPECT_THROW(pool::ProcessPool(2, options_with([] { std::abort(); })), pool::InitializerError);
}

TEST_F(ProcessPoolApi, ReplacementWorkersRunTheInitializerToo) {
  SharedCounters shared;
  Counters* counters = shared.get();
  static int initialized = 0;
  pool::ProcessPool workers(2, options_with(
                                   [counters] {
                                     ++counters->calls;
                                     initialized = 7;
                                   },
                                   1));
  EXPECT_EQ(workers.map([](int) { return initialized; }, pool::range(0, 12), 1),
            std::vector<int>(12, 7));
  EXPECT_GE(counters->calls.load(), 12);
}

TEST_F(ProcessPoolApi, MaxtasksperchildReplacesAWorkerAfterThatManyChunks) {
  pool::ProcessPool workers(2, options_with({}, 2));
  const auto pids =
      workers.map([](int) { return static_cast<int>(::getpid()); }, pool::range(0, 20), 1);
  std::map<int, int> chunks_per_pid;
  for (int pid : pids) ++chunks_per_pid[pid];
  EXPECT_GE(chunks_per_pid.size(), 10u);
  for (const auto& [pid, chunks] : chunks_per_pid) EXPECT_LE(chunks, 2) << "pid " << pid;
}

}  // namespace
