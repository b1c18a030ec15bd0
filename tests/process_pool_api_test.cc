// The Python Pool API on ProcessPool: asynchronous results, callbacks, starmap, apply, imap,
// imap_unordered, map_reduce, options, and the close/join/terminate lifecycle.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <new>
#include <numeric>
#include <optional>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
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
  std::atomic<int> running{0};
  std::atomic<int> most_running{0};
  std::atomic<int> calls{0};
  std::atomic<int> finished{0};
};

using SharedCounters = pool::testing::SharedObject<Counters>;

// Sleeps while counting how many such tasks run at once.
struct OverlappingSleep {
  Counters* counters;
  int operator()(int x) const {
    const int now = ++counters->running;
    int most = counters->most_running.load();
    while (now > most && !counters->most_running.compare_exchange_weak(most, now)) {
    }
    std::this_thread::sleep_for(100ms);
    --counters->running;
    return x;
  }
};

int square(int x) { return x * x; }

TEST_F(ProcessPoolApi, MapAsyncGetReturnsTheResultsInOrder) {
  pool::ProcessPool workers(2);
  pool::AsyncResult<std::vector<int>> result = workers.map_async(&square, pool::range(0, 100), 7);
  EXPECT_EQ(result.get(), workers.map(&square, pool::range(0, 100)));
  EXPECT_TRUE(result.ready());
  EXPECT_TRUE(result.successful());
  EXPECT_EQ(result.get().size(), 100u);  // get() may be called again
}

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

TEST_F(ProcessPoolApi, CallbackRunsOnceWithTheResultsBeforeReady) {
  pool::ProcessPool workers(2);
  int calls = 0;
  std::vector<int> seen;
  auto result = workers.map_async(&square, pool::range(0, 10), 0, [&](const std::vector<int>& r) {
    ++calls;
    seen = r;
  });
  result.wait();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, result.get());
  result.get();
  EXPECT_EQ(calls, 1);
}

TEST_F(ProcessPoolApi, ErrorCallbackRunsOnceWithTheTaskError) {
  pool::ProcessPool workers(2);
  int successes = 0;
  std::vector<std::exception_ptr> errors;
  auto result = workers.map_async(
      [](int x) {
        if (x == 6) throw std::invalid_argument("six");
        return x;
      },
      pool::range(0, 10), 1, [&](const std::vector<int>&) { ++successes; },
      [&](std::exception_ptr error) { errors.push_back(error); });
  EXPECT_THROW(result.get(), pool::TaskError);
  EXPECT_FALSE(result.successful());
  EXPECT_EQ(successes, 0);
  ASSERT_EQ(errors.size(), 1u);
  try {
    std::rethrow_exception(errors[0]);
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 6);
    EXPECT_EQ(error.message(), "six");
  }
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

TEST_F(ProcessPoolApi, ApplyAsyncCallsRunConcurrently) {
  SharedCounters shared;
  pool::ProcessPool workers(2);
  std::vector<pool::AsyncResult<int>> results;
  for (int i = 0; i < 4; ++i)
    results.push_back(workers.apply_async(OverlappingSleep{shared.get()}, i));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(results[i].get(), i);
  EXPECT_EQ(shared.get()->most_running.load(), 2);
}

TEST_F(ProcessPoolApi, ApplyRunsAFunctionOfSeveralArgumentsAndAVoidFunction) {
  SharedCounters shared;
  pool::ProcessPool workers(2);
  EXPECT_EQ(workers.apply([](int a, double b, std::string c) { return c + std::to_string(a * b); },
                          2, 1.5, std::string("x=")),
            "x=3.000000");
  Counters* counters = shared.get();
  workers.apply([counters](int n) { counters->calls += n; }, 5);
  pool::AsyncResult<void> done = workers.apply_async([counters] { counters->calls += 1; });
  done.get();
  EXPECT_EQ(counters->calls.load(), 6);
}

TEST_F(ProcessPoolApi, StarmapUnpacksTuplesPairsAndArrays) {
  pool::ProcessPool workers(2);
  const std::vector<std::tuple<int, int, std::string>> triples{{1, 2, "a"}, {3, 4, "b"}};
  EXPECT_EQ(
      workers.starmap([](int a, int b, const std::string& s) { return s + std::to_string(a + b); },
                      triples),
      (std::vector<std::string>{"a3", "b7"}));
  const std::vector<std::pair<int, int>> pairs{{2, 3}, {4, 5}, {6, 7}};
  EXPECT_EQ(workers.starmap([](int a, int b) { return a * b; }, pairs, 2),
            (std::vector<int>{6, 20, 42}));
  const std::vector<std::array<double, 2>> arrays{{1.0, 2.0}};
  EXPECT_EQ(workers.starmap_async([](double a, double b) { return a / b; }, arrays).get(),
            (std::vector<double>{0.5}));
}

TEST_F(ProcessPoolApi, ImapYieldsInInputOrderForEveryChunksize) {
  pool::ProcessPool workers(2);
  for (std::size_t chunksize : {1u, 3u, 100u}) {
    std::vector<int> got;
    for (int value : workers.imap(&square, pool::range(0, 50), chunksize)) got.push_back(value);
    std::vector<int> expected(50);
    for (int i = 0; i < 50; ++i) expected[i] = i * i;
    EXPECT_EQ(got, expected) << "chunksize " << chunksize;
  }
}

TEST_F(ProcessPoolApi, ImapCarriesSerializedResultsAndItems) {
  pool::ProcessPool workers(2);
  const std::list<std::string> words{"a", "bb", "ccc", "dddd"};
  auto stream = workers.imap([](const std::string& w) { return w + w; }, words, 1);
  EXPECT_EQ(stream.collect(), (std::vector<std::string>{"aa", "bbbb", "cccccc", "dddddddd"}));
}

TEST_F(ProcessPoolApi, ImapReadsAnUnsizedInputAndKeepsAnRvalueInput) {
  pool::ProcessPool workers(2);
  auto odd = std::views::iota(0, 20000) | std::views::filter([](int x) { return x % 2 == 1; });
  long long total = 0;
  std::size_t count = 0;
  for (int value : workers.imap([](int x) { return x; }, odd, 16)) {
    total += value;
    ++count;
  }
  EXPECT_EQ(count, 10000u);
  EXPECT_EQ(total, 10000LL * 10000LL);
  auto stream = workers.imap(&square, std::vector<int>{1, 2, 3});
  EXPECT_EQ(stream.collect(), (std::vector<int>{1, 4, 9}));
}

TEST_F(ProcessPoolApi, ImapUnorderedYieldsEveryIndexOnceWithItsResult) {
  pool::ProcessPool workers(2);
  std::set<std::size_t> indices;
  for (auto [index, value] : workers.imap_unordered(&square, pool::range(0, 10000), 7)) {
    EXPECT_EQ(value, static_cast<int>(index * index));
    EXPECT_TRUE(indices.insert(index).second) << "index " << index << " twice";
  }
  EXPECT_EQ(indices.size(), 10000u);
}

TEST_F(ProcessPoolApi, ImapThrowsAtTheFailingPositionAfterEveryEarlierResult) {
  pool::ProcessPool workers(2);
  std::vector<int> got;
  try {
    for (int value : workers.imap(
             [](int x) {
               if (x == 30) throw std::domain_error("thirty");
               return x;
             },
             pool::range(0, 100), 1)) {
      got.push_back(value);
    }
    FAIL() << "the stream ended without the failure";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 30);
  }
  std::vector<int> expected(30);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(workers.map(&square, pool::range(0, 3)), (std::vector<int>{0, 1, 4}));
}

TEST_F(ProcessPoolApi, StreamFailuresNameTheInputIndexAlsoBeyondTheFirstBatch) {
  pool::ProcessPool workers(2);
  const auto fail_at_9000 = [](int x) {
    if (x == 9000) throw std::runtime_error("late");
    return x;
  };
  std::size_t yielded = 0;
  try {
    for ([[maybe_unused]] int value : workers.imap(fail_at_9000, pool::range(0, 20000))) ++yielded;
    FAIL() << "the stream ended without the failure";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 9000);
  }
  EXPECT_EQ(yielded, 9000u);
  try {
    for ([[maybe_unused]] auto pair : workers.imap_unordered(fail_at_9000, pool::range(0, 20000))) {
    }
    FAIL() << "the stream ended without the failure";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 9000);
  }
}

TEST_F(ProcessPoolApi, DroppingAStreamEarlyCancelsItsWorkAndThePoolGoesOn) {
  SharedCounters shared;
  pool::ProcessPool workers(2);
  Counters* counters = shared.get();
  {
    auto stream = workers.imap(
        [counters](int x) {
          ++counters->calls;
          std::this_thread::sleep_for(1ms);
          return x;
        },
        pool::range(0, 1000000));
    EXPECT_EQ(*stream.begin(), 0);
  }
  const int calls_after_drop = counters->calls.load();
  EXPECT_LT(calls_after_drop, 1000000);
  EXPECT_EQ(workers.map(&square, pool::range(0, 4)), (std::vector<int>{0, 1, 4, 9}));
  EXPECT_EQ(counters->calls.load(), calls_after_drop);
}

TEST_F(ProcessPoolApi, MapReduceEqualsTheSerialFoldForEveryChunksize) {
  pool::ProcessPool workers(2);
  const auto cube = [](long x) { return x * x * x; };
  long serial = 0;
  for (long i = 0; i < 10001; ++i) serial += cube(i);
  for (std::size_t chunksize : {0u, 1u, 7u}) {
    EXPECT_EQ(workers.map_reduce(cube, pool::range(0L, 10001L), std::plus<>(), 0L, chunksize),
              serial)
        << "chunksize " << chunksize;
  }
  std::vector<long> inputs(10001);
  std::iota(inputs.begin(), inputs.end(), 0L);
  EXPECT_EQ(workers.map_reduce(cube, inputs, std::plus<>(), 0L), serial);
}

TEST_F(ProcessPoolApi, MapReduceFoldsSerializedValuesInInputOrder) {
  pool::ProcessPool workers(2);
  const auto letter = [](int i) { return std::string(1, static_cast<char>('a' + i % 26)); };
  std::string serial;
  for (int i = 0; i < 500; ++i) serial += letter(i);
  // Concatenation is associative but not commutative: only an in-order fold gets this right.
  EXPECT_EQ(workers.map_reduce(letter, pool::range(0, 500), std::plus<>(), std::string(), 9),
            serial);
}

TEST_F(ProcessPoolApi, MapReduceReportsATaskError) {
  pool::ProcessPool workers(2);
  EXPECT_THROW(workers.map_reduce(
                   [](int x) {
                     if (x == 77) throw std::runtime_error("no");
                     return x;
                   },
                   pool::range(0, 100), std::plus<>(), 0, 5),
               pool::TaskError);
}

TEST_F(ProcessPoolApi, InitializerRunsOnceInEveryWorkerBeforeItsTasks) {
  SharedCounters shared;
  Counters* counters = shared.get();
  static int initialized = 0;
  {
    pool::ProcessPool workers(3, pool::ProcessPoolOptions{.initializer = [counters] {
                                ++counters->calls;
                                initialized = 42;
                              }});
    EXPECT_EQ(counters->calls.load(), 3);
    EXPECT_EQ(workers.map([](int) { return initialized; }, pool::range(0, 30), 1),
              std::vector<int>(30, 42));
  }
  EXPECT_EQ(initialized, 0);  // it ran in the workers only
}

TEST_F(ProcessPoolApi, ThrowingInitializerFailsTheConstructorWithInitializerError) {
  try {
    pool::ProcessPool workers(
        2, pool::ProcessPoolOptions{.initializer = [] { throw std::runtime_error("no GPU"); }});
    FAIL() << "the constructor returned";
  } catch (const pool::InitializerError& error) {
    EXPECT_EQ(error.type_name(), "std::runtime_error");
    EXPECT_EQ(error.message(), "no GPU");
  }
}

TEST_F(ProcessPoolApi, AnInitializerThatCrashesFailsTheConstructor) {
  EXPECT_THROW(pool::ProcessPool(2, pool::ProcessPoolOptions{.initializer = [] { std::abort(); }}),
               pool::InitializerError);
}

TEST_F(ProcessPoolApi, ReplacementWorkersRunTheInitializerToo) {
  SharedCounters shared;
  Counters* counters = shared.get();
  static int initialized = 0;
  pool::ProcessPool workers(2, pool::ProcessPoolOptions{.initializer =
                                                            [counters] {
                                                              ++counters->calls;
                                                              initialized = 7;
                                                            },
                                                        .maxtasksperchild = 1});
  EXPECT_EQ(workers.map([](int) { return initialized; }, pool::range(0, 12), 1),
            std::vector<int>(12, 7));
  EXPECT_GE(counters->calls.load(), 12);
}

TEST_F(ProcessPoolApi, MaxtasksperchildReplacesAWorkerAfterThatManyChunks) {
  pool::ProcessPool workers(2, pool::ProcessPoolOptions{.maxtasksperchild = 2});
  const auto pids =
      workers.map([](int) { return static_cast<int>(::getpid()); }, pool::range(0, 20), 1);
  std::map<int, int> chunks_per_pid;
  for (int pid : pids) ++chunks_per_pid[pid];
  EXPECT_GE(chunks_per_pid.size(), 10u);
  for (const auto& [pid, chunks] : chunks_per_pid) EXPECT_LE(chunks, 2) << "pid " << pid;
}

TEST_F(ProcessPoolApi, CallsAfterCloseThrowPoolNotRunningAndJoinWaitsForSubmittedWork) {
  pool::ProcessPool workers(2);
  EXPECT_THROW(workers.join(), std::logic_error);
  auto pending = workers.map_async(
      [](int x) {
        std::this_thread::sleep_for(50ms);
        return x;
      },
      pool::range(0, 4), 1);
  workers.close();
  EXPECT_THROW(workers.map(&square, pool::range(0, 2)), pool::PoolNotRunning);
  EXPECT_THROW(workers.apply_async(&square, 2), pool::PoolNotRunning);
  EXPECT_THROW(workers.imap(&square, pool::range(0, 2)), pool::PoolNotRunning);
  workers.join();
  EXPECT_TRUE(pending.ready());
  EXPECT_EQ(pending.get(), (std::vector<int>{0, 1, 2, 3}));
}

TEST_F(ProcessPoolApi, TerminateFailsUnfinishedResultsWithPoolNotRunning) {
  pool::ProcessPool workers(2);
  auto slow = workers.apply_async([] {
    std::this_thread::sleep_for(10s);
    return 1;
  });
  workers.terminate();
  EXPECT_THROW(slow.get(), pool::PoolNotRunning);
  EXPECT_THROW(workers.map(&square, pool::range(0, 2)), pool::PoolNotRunning);
  workers.join();
}

TEST_F(ProcessPoolApi, DestructorWaitsForSubmittedCalls) {
  std::optional<pool::AsyncResult<std::vector<int>>> result;
  {
    pool::ProcessPool workers(2);
    result = workers.map_async(
        [](int x) {
          std::this_thread::sleep_for(20ms);
          return -x;
        },
        pool::range(0, 6), 1);
  }
  EXPECT_TRUE(result->ready());
  EXPECT_EQ(result->get(), (std::vector<int>{0, -1, -2, -3, -4, -5}));
}

}  // namespace
