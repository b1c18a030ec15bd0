#include <signal.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pool/pool.h"
#include "tests/leak_check.h"

namespace {

using ProcessPoolFailure = pool::testing::NoLeftoversTest;

TEST_F(ProcessPoolFailure, RethrowsATaskExceptionAsTaskErrorWithIndexTypeAndMessage) {
  pool::ProcessPool workers(2);
  try {
    workers.map(
        [](int x) {
          if (x == 37) throw std::out_of_range("no room for " + std::to_string(x));
          return x;
        },
        pool::range(0, 100), 5);
    FAIL() << "map returned although a task threw";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 37);
    EXPECT_EQ(error.type_name(), "std::out_of_range");
    EXPECT_EQ(error.message(), "no room for 37");
    EXPECT_EQ(std::string(error.what()), "task 37 raised std::out_of_range: no room for 37");
  }
}

TEST_F(ProcessPoolFailure, ReportsTheLowestFailingIndexWhenSeveralTasksThrow) {
  pool::ProcessPool workers(2);
  try {
    workers.map(
        [](int x) {
          if (x % 10 == 3) throw std::runtime_error("bad");
          return x;
        },
        pool::range(0, 40), 1);
    FAIL() << "map returned although tasks threw";
  } catch (const pool::TaskError& error) {
    // Chunks run in index order per worker, and every worker stops at its first failure.
    EXPECT_EQ(error.task_index(), 3);
  }
}

TEST_F(ProcessPoolFailure, NamesTheTypeOfANonStandardException) {
  pool::ProcessPool workers(1);
  try {
    workers.map([](int x) -> int { throw x; }, pool::range(0, 1));
    FAIL() << "map returned although a task threw";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 0);
    EXPECT_EQ(error.type_name(), "int");
  }
}

TEST_F(ProcessPoolFailure, StaysUsableAfterATaskError) {
  pool::ProcessPool workers(2);
  EXPECT_THROW(workers.map([](int) -> int { throw std::logic_error("x"); }, pool::range(0, 8)),
               pool::TaskError);
  EXPECT_EQ(workers.map([](int x) { return x + 1; }, pool::range(0, 4)),
            (std::vector<int>{1, 2, 3, 4}));
}

TEST_F(ProcessPoolFailure, WorkerKilledMidMapGivesWorkerDiedAndTheNextMapSucceeds) {
  pool::ProcessPool workers(2);
  try {
    workers.map(
        [](int x) {
          if (x == 5) ::kill(::getpid(), SIGKILL);
          return x;
        },
        pool::range(0, 20), 1);
    FAIL() << "map returned although a worker was killed";
  } catch (const pool::WorkerDied& died) {
    EXPECT_EQ(died.task_index(), 5);
    EXPECT_EQ(died.signal(), SIGKILL);
    EXPECT_NE(std::string(died.what()).find("signal 9"), std::string::npos) << died.what();
    EXPECT_NE(std::string(died.what()).find("task 5"), std::string::npos) << died.what();
  }
  EXPECT_EQ(workers.size(), 2);
  const auto pids =
      workers.map([](int) { return static_cast<int>(::getpid()); }, pool::range(0, 100), 1);
  EXPECT_EQ(pids.size(), 100u);
  EXPECT_EQ(workers.map([](int x) { return 2 * x; }, pool::range(0, 5)),
            (std::vector<int>{0, 2, 4, 6, 8}));
}

TEST_F(ProcessPoolFailure, WorkerThatExitsMidMapGivesWorkerDiedWithItsStatus) {
  pool::ProcessPool workers(2);
  try {
    workers.map(
        [](int x) {
          if (x == 2) ::_exit(3);
          return x;
        },
        pool::range(0, 4), 1);
    FAIL() << "map returned although a worker exited";
  } catch (const pool::WorkerDied& died) {
    EXPECT_EQ(died.task_index(), 2);
    EXPECT_EQ(died.exit_status(), 3);
  }
  EXPECT_EQ(workers.map([](int x) { return x; }, pool::range(0, 3)), (std::vector<int>{0, 1, 2}));
}

TEST_F(ProcessPoolFailure, ReplacesAWorkerThatDiedBetweenCalls) {
  pool::ProcessPool workers(1);
  const int pid =
      workers.map([](int) { return static_cast<int>(::getpid()); }, pool::range(0, 1))[0];
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  // The death is noticed and the worker replaced before the next call is dispatched (or, if the
  // kill races with the dispatch, the call reports it); the call after that always works.
  std::vector<int> again;
  try {
    again = workers.map([](int) { return static_cast<int>(::getpid()); }, pool::range(0, 1));
  } catch (const pool::WorkerDied&) {
    again = workers.map([](int) { return static_cast<int>(::getpid()); }, pool::range(0, 1));
  }
  EXPECT_NE(again[0], pid);
}

TEST_F(ProcessPoolFailure, RejectsFewerThanOneWorker) {
  EXPECT_THROW(pool::ProcessPool(0), std::invalid_argument);
  EXPECT_THROW(pool::ProcessPool(-3), std::invalid_argument);
}

TEST_F(ProcessPoolFailure, RefusesToForkWhileOtherThreadsRunUnlessAllowed) {
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    while (!stop) std::this_thread::yield();
  });
  EXPECT_THROW(pool::ProcessPool(2), std::logic_error);
  {
    pool::ProcessPool workers(2, pool::ProcessPoolOptions{.allow_fork_with_threads = true});
    EXPECT_EQ(workers.map([](int x) { return x * x; }, pool::range(0, 3)),
              (std::vector<int>{0, 1, 4}));
  }
  stop = true;
  busy.join();
}

}  // namespace
