#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <new>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pool/detail/process/message.h"
#include "pool/pool.h"
#include "tests/child_process.h"
#include "tests/leak_check.h"
#include "tests/shared_object.h"

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

TEST_F(ProcessPoolFailure, AWorkerKilledAtAnyMomentOfASingleItemMapFailsOrFinishesTheCall) {
  // Workers count finished single items privately and publish them when they leave the call, so
  // a kill usually lands between two items, holding completions nobody saw: the call must still
  // fail with WorkerDied (or have finished), never wait forever.
  pool::ProcessPool workers(2);
  int deaths = 0;
  for (int round = 0; round < 20; ++round) {
    const auto pids =
        workers.map([](int) { return static_cast<int>(::getpid()); }, pool::range(0, 1000), 1);
    auto call = workers.map_async([](std::int64_t x) { return x * x; },
                                  pool::range<std::int64_t>(0, 3'000'000), 1);
    std::this_thread::sleep_for(std::chrono::microseconds(100 + 150 * round));
    ASSERT_EQ(::kill(pids.back(), SIGKILL), 0);
    try {
      const std::vector<std::int64_t> squares = call.get();
      ASSERT_EQ(squares.size(), 3'000'000u);
      EXPECT_EQ(squares[2'999'999], std::int64_t{2'999'999} * 2'999'999);
    } catch (const pool::WorkerDied& died) {
      EXPECT_EQ(died.signal(), SIGKILL) << died.what();
      ++deaths;
    }
  }
  EXPECT_GT(deaths, 0) << "every call finished before its kill: nothing was tested";
  EXPECT_EQ(workers.map([](int x) { return x + 1; }, pool::range(0, 3)),
            (std::vector<int>{1, 2, 3}));
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

TEST_F(ProcessPoolFailure, RefusesAnExplicitForkWhileOtherThreadsRunUnlessAllowed) {
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    while (!stop) std::this_thread::yield();
  });
  EXPECT_THROW(pool::ProcessPool(2, pool::ProcessPoolOptions{.start = pool::Start::fork}),
               std::logic_error);
  EXPECT_EQ(pool::ProcessPool(2).start_method(), pool::Start::forkserver)
      << "left unset, the start method is one that does not fork this process";
  {
    pool::ProcessPool workers(2, pool::ProcessPoolOptions{.allow_fork_with_threads = true});
    EXPECT_EQ(workers.start_method(), pool::Start::fork);
    EXPECT_EQ(workers.map([](int x) { return x * x; }, pool::range(0, 3)),
              (std::vector<int>{0, 1, 4}));
  }
  stop = true;
  busy.join();
}

// A flag in memory shared with the workers.
using SharedFlag = pool::testing::SharedObject<std::atomic<int>>;

TEST_F(ProcessPoolFailure, SegfaultInImapGivesWorkerDiedAfterEveryEarlierResult) {
  pool::ProcessPool workers(2);
  std::vector<int> got;
  try {
    for (int value : workers.imap(
             [](int x) {
               if (x == 12) ::raise(SIGSEGV);
               return x;
             },
             pool::range(0, 40), 1)) {
      got.push_back(value);
    }
    FAIL() << "the stream ended without the death";
  } catch (const pool::WorkerDied& died) {
    EXPECT_EQ(died.task_index(), 12);
    EXPECT_EQ(died.signal(), SIGSEGV);
  }
  std::vector<int> expected(12);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(workers.map([](int x) { return x; }, pool::range(0, 3)), (std::vector<int>{0, 1, 2}));
}

TEST_F(ProcessPoolFailure, AbortInApplyAsyncGivesWorkerDiedWithSigabrt) {
  pool::ProcessPool workers(2);
  auto fine = workers.apply_async([](int x) { return x + 1; }, 1);
  auto doomed = workers.apply_async([](int) -> int { std::abort(); }, 2);
  try {
    doomed.get();
    FAIL() << "get() returned although the worker aborted";
  } catch (const pool::WorkerDied& died) {
    EXPECT_EQ(died.signal(), SIGABRT);
    EXPECT_EQ(died.task_index(), 0);
  }
  EXPECT_EQ(fine.get(), 2);
  EXPECT_EQ(workers.apply([](int x) { return 3 * x; }, 5), 15);
}

TEST_F(ProcessPoolFailure, ExitInMapAsyncGivesWorkerDiedWithTheStatus) {
  pool::ProcessPool workers(2);
  auto result = workers.map_async(
      [](int x) {
        if (x == 3) ::_exit(3);
        return x;
      },
      pool::range(0, 8), 1);
  try {
    result.get();
    FAIL() << "get() returned although a worker exited";
  } catch (const pool::WorkerDied& died) {
    EXPECT_EQ(died.task_index(), 3);
    EXPECT_EQ(died.exit_status(), 3);
  }
}

TEST_F(ProcessPoolFailure, ReportsADeathWithoutWaitingForTheOtherWorkersTasks) {
  SharedFlag long_task_done;
  std::atomic<int>* done = long_task_done.get();
  pool::ProcessPool workers(2);
  try {
    workers.map(
        [done](int x) {
          if (x == 0) {
            std::this_thread::sleep_for(std::chrono::seconds(5));
            done->store(1);
          } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            ::raise(SIGKILL);
          }
          return x;
        },
        pool::range(0, 2), 1);
    FAIL() << "map returned although a worker was killed";
  } catch (const pool::WorkerDied& died) {
    EXPECT_EQ(died.task_index(), 1);
  }
  EXPECT_EQ(done->load(), 0) << "the failure waited for the other worker's 5 s task";
  workers.terminate();
}

TEST_F(ProcessPoolFailure, GarbageOnTheControlChannelGivesAClearErrorAndTheNextCallWorks) {
  pool::ProcessPool workers(1);
  try {
    workers.map(
        [](int x) {
          // The worker's only socket is its control channel to the parent.
          char garbage[96];
          std::memset(garbage, 0xAB, sizeof(garbage));
          for (int fd = 3; fd < 64; ++fd) {
            struct stat info {};
            if (::fstat(fd, &info) == 0 && S_ISSOCK(info.st_mode)) {
              [[maybe_unused]] auto written = ::write(fd, garbage, sizeof(garbage));
            }
          }
          std::this_thread::sleep_for(std::chrono::seconds(5));
          return x;
        },
        pool::range(0, 1));
    FAIL() << "map returned although the worker broke the protocol";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("control channel"), std::string::npos) << error.what();
  }
  EXPECT_EQ(workers.map([](int x) { return x; }, pool::range(0, 2)), (std::vector<int>{0, 1}));
}

TEST_F(ProcessPoolFailure, AnImpossibleBufferRequestIsRefusedWithoutAllocatingIt) {
  pool::ProcessPool workers(1);
  try {
    workers.map(
        [](int x) {
          pool::detail::Message request = pool::detail::make_message(
              pool::detail::MessageType::kNeedSpill, 0, 0, std::uint64_t{1} << 60);
          for (int fd = 3; fd < 64; ++fd) {
            struct stat info {};
            if (::fstat(fd, &info) == 0 && S_ISSOCK(info.st_mode)) {
              pool::detail::write_message(fd, request);
            }
          }
          std::this_thread::sleep_for(std::chrono::seconds(5));
          return x;
        },
        pool::range(0, 1));
    FAIL() << "map returned although the worker asked for an exabyte";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("impossible result-buffer request"), std::string::npos)
        << error.what();
  }
}

TEST_F(ProcessPoolFailure, TaskTimeoutKillsAnOverrunningTaskAndThePoolGoesOn) {
  pool::ProcessPool workers(
      2, pool::ProcessPoolOptions{.task_timeout = std::chrono::milliseconds(200)});
  try {
    workers.map(
        [](int x) {
          if (x == 4) std::this_thread::sleep_for(std::chrono::seconds(30));
          return x;
        },
        pool::range(0, 8), 1);
    FAIL() << "map returned although a task overran";
  } catch (const pool::TaskTimeout& timeout) {
    EXPECT_EQ(timeout.task_index(), 4);
    EXPECT_EQ(timeout.signal(), SIGKILL);
    EXPECT_DOUBLE_EQ(timeout.timeout_seconds(), 0.2);
  }
  EXPECT_EQ(workers.map([](int x) { return x; }, pool::range(0, 3)), (std::vector<int>{0, 1, 2}));
}

TEST_F(ProcessPoolFailure, KillCancelStopsTheWorkerRunningTheCallAndThePoolGoesOn) {
  SharedFlag started;
  std::atomic<int>* flag = started.get();
  pool::ProcessPool workers(2);
  auto stuck = workers.submit(
      [flag](int seconds) {
        flag->store(::getpid());
        std::this_thread::sleep_for(std::chrono::seconds(seconds));
        return seconds;
      },
      60);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (flag->load() == 0 && std::chrono::steady_clock::now() < until) {
    stuck.wait(std::chrono::milliseconds(1));
  }
  const int pid = flag->load();
  ASSERT_NE(pid, 0) << "the task never started";
  EXPECT_FALSE(stuck.cancel()) << "a plain cancel leaves a running call alone";
  EXPECT_TRUE(stuck.cancel(pool::kill_running));
  EXPECT_TRUE(stuck.cancelled());
  EXPECT_THROW(stuck.get(), pool::CancelledError);
  EXPECT_EQ(pool::testing::process_state(pid), 0) << "its worker was killed and reaped";
  EXPECT_EQ(workers.size(), 2) << "and replaced";
  EXPECT_EQ(workers.map([](int x) { return x * 3; }, pool::range(0, 4)),
            (std::vector<int>{0, 3, 6, 9}));
}

// Kills its worker the first time any worker reaches item `at` (the flag tells attempts apart).
struct DieOnceAt {
  std::atomic<int>* died;
  long at;
  long operator()(long x) const {
    if (x == at && died->exchange(1) == 0) ::raise(SIGKILL);
    return x * x + 1;
  }
};

TEST_F(ProcessPoolFailure, RetriesRunAChunkLostWithItsWorkerAgainForTheCleanResults) {
  SharedFlag died;
  pool::ProcessPool workers(2);
  const std::vector<long> clean = workers.map(DieOnceAt{died.get(), -1}, pool::range(0L, 300L), 7);
  for (std::size_t chunksize : {1, 7, 64}) {
    died->store(0);
    EXPECT_EQ(workers.map(pool::retrying(DieOnceAt{died.get(), 123}, 1), pool::range(0L, 300L),
                          chunksize),
              clean)
        << "chunksize " << chunksize;
    EXPECT_EQ(died->load(), 1) << "the first attempt died";
  }
  died->store(0);
  std::vector<long> streamed;
  for (long x :
       workers.imap(pool::retrying(DieOnceAt{died.get(), 40}, 1), pool::range(0L, 300L), 5)) {
    streamed.push_back(x);
  }
  EXPECT_EQ(streamed, clean);
  // The same chunks folded in the same order: an op that neither commutes nor associates gives
  // the clean run's value only then.
  auto reduce = [&](long die_at) {
    return workers.map_reduce(
        pool::retrying(DieOnceAt{died.get(), die_at}, 1), pool::range(0L, 300L),
        [](std::uint64_t a, auto b) { return a * 1000003 + static_cast<std::uint64_t>(b) + 7; },
        std::uint64_t{0}, 9);
  };
  const std::uint64_t clean_fold = reduce(-1);
  died->store(0);
  EXPECT_EQ(reduce(200), clean_fold);
  EXPECT_EQ(died->load(), 1);
}

TEST_F(ProcessPoolFailure, ThePoolsRetriesOptionCoversEveryCallAndAnApplyRunsAgain) {
  SharedFlag died;
  pool::ProcessPool workers(2, pool::ProcessPoolOptions{.retries = 1});
  EXPECT_EQ(workers.apply(DieOnceAt{died.get(), 5}, 5L), 26);
  EXPECT_EQ(died->load(), 1);
  died->store(0);
  EXPECT_EQ(workers.submit(DieOnceAt{died.get(), 6}, 6L).result(), 37);
}

TEST_F(ProcessPoolFailure, RetriesThatRunOutFailWithWorkerDiedCountingTheAttempts) {
  pool::ProcessPool workers(2);
  try {
    workers.map(pool::retrying(
                    [](int x) {
                      if (x == 5) ::raise(SIGKILL);
                      return x;
                    },
                    2),
                pool::range(0, 20), 2);
    FAIL() << "map returned although every attempt died";
  } catch (const pool::WorkerDied& died) {
    EXPECT_EQ(died.signal(), SIGKILL);
    EXPECT_NE(std::string(died.what()).find("3 attempts (retries = 2)"), std::string::npos)
        << died.what();
  }
  EXPECT_EQ(workers.map([](int x) { return x + 1; }, pool::range(0, 3)),
            (std::vector<int>{1, 2, 3}));
}

TEST_F(ProcessPoolFailure, NonStandardThrowInImapIsATaskErrorNamingTheType) {
  struct Oops {};
  pool::ProcessPool workers(2);
  auto stream = workers.imap(
      [](int x) {
        if (x == 2) throw Oops{};
        return x;
      },
      pool::range(0, 5));
  try {
    stream.collect();
    FAIL() << "the stream ended without the failure";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 2);
    EXPECT_NE(error.type_name().find("Oops"), std::string::npos) << error.type_name();
  }
}

}  // namespace
