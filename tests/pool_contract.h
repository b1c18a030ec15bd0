// PoolContract: what every pool promises (pool::ProcessPool, GilThreadPool, FreeThreadPool and
// MpiPool), written once as a typed test suite and instantiated once per pool binary, the way
// abseil's waiter_test.cc tests its waiters:
//
//   INSTANTIATE_TYPED_TEST_SUITE_P(Local, PoolContract, pool::testing::AllPools,
//                                  pool::testing::PoolName);
//
// - Task functions run on every pool: plain functions, or lambdas capturing values, since
//   ProcessPool and MpiPool copy them into another process.
// - What tasks do is counted in ContractCounters, a page of shared memory mapped before any pool
//   forks, so threads and worker processes update the very counters the test reads. MPI worker
//   ranks are programs of their own that cannot see it: there only results are checked
//   (PoolTraits::kTasksSeeTestMemory).
// - No test asserts on wall-clock time: tasks that must still be running when the test looks are
//   held at a gate the test opens, and waits that would hang if a pool misbehaved give up after
//   kPatience, so that the test fails instead.
// - Where pools differ by design (where callbacks run, what terminate() does to a running task,
//   the initializer, what a worker count of 0 means), PoolTraits below says so, per pool.
//   Behaviour only one pool has (worker death, task timeouts, the GIL, ranks) is tested beside
//   it, and so is what pools do differently where they should not (get(timeout) on MpiPool in a
//   job of one rank): each pool's own test file says which.
#ifndef TESTS_POOL_CONTRACT_H_
#define TESTS_POOL_CONTRACT_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <fstream>
#include <functional>
#include <list>
#include <numeric>
#include <optional>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/pool.h"
#include "tests/leak_check.h"
#include "tests/pool_types.h"
#include "tests/shared_object.h"

namespace pool {
class MpiPool;  // pool/mpi_pool.h, which only the MPI test binary is built with
}  // namespace pool

namespace pool::testing {

// ---------------------------------------------------------------------------------------------
// How the pools differ, one specialization per pool:
//   kTasksSeeTestMemory               tasks update the test's ContractCounters; else only results
//                                     are checked
//   kCallbacksRunInTheCaller          callbacks run in the thread that uses the pool; else in the
//                                     pool thread that finished the work
//   kTerminateLetsRunningTasksFinish  terminate() waits for running tasks; else their calls fail
//                                     with PoolNotRunning
//   kZeroWorkersMeansAll              P(0) has as many workers as P(); else it is rejected
//   kHasInitializer                   make(workers, initializer) exists
//   make(workers)                     a pool of that many workers

template <class P>
struct PoolTraits;

// ProcessPool by any start method; kForked: its workers are forks of the test, mapped after the
// test's shared counters, so tasks update them. Spawned and forkserver workers are new executions
// of the test program: they see its memory as it is before main, so only results are checked.
template <class P, bool kForked>
struct ProcessPoolTraits {
  static constexpr bool kTasksSeeTestMemory = kForked;
  static constexpr bool kCallbacksRunInTheCaller = true;
  static constexpr bool kTerminateLetsRunningTasksFinish = false;  // it kills the workers
  static constexpr bool kZeroWorkersMeansAll = false;
  static constexpr bool kHasInitializer = true;
  static P make(int workers) { return P(workers); }
  static P make(int workers, std::function<void()> initializer) {
    ProcessPoolOptions options;
    options.initializer = std::move(initializer);
    return P(workers, std::move(options));
  }
  static constexpr bool kPinsWorkers = true;
  static constexpr bool kQueuesTasksOnWorkers = false;
  static P make_pinned(int workers) {
    ProcessPoolOptions options;
    options.pin_workers = true;
    return P(workers, std::move(options));
  }
  // Workers forked after the test set its globals see them: each replaces the last after a chunk.
  static P make_refreshing(int workers) {
    ProcessPoolOptions options;
    options.maxtasksperchild = 1;
    return P(workers, std::move(options));
  }
};

template <>
struct PoolTraits<ProcessPool> : ProcessPoolTraits<ProcessPool, true> {};
template <Start kStart>
struct PoolTraits<StartedProcessPool<kStart>>
    : ProcessPoolTraits<StartedProcessPool<kStart>, kStart == Start::fork> {};

template <>
struct PoolTraits<GilThreadPool> {
  static constexpr bool kTasksSeeTestMemory = true;
  static constexpr bool kCallbacksRunInTheCaller = false;  // in the pool thread that finished
  static constexpr bool kTerminateLetsRunningTasksFinish = true;  // threads cannot be killed
  static constexpr bool kZeroWorkersMeansAll = false;
  static constexpr bool kHasInitializer = true;
  static GilThreadPool make(int workers) { return GilThreadPool(workers); }
  static GilThreadPool make(int workers, std::function<void()> initializer) {
    ThreadPoolOptions options;
    options.initializer = std::move(initializer);
    return GilThreadPool(workers, GilThreadPool::kDefaultSwitchInterval, std::move(options));
  }
  static constexpr bool kPinsWorkers = true;
  static constexpr bool kQueuesTasksOnWorkers = false;
  static GilThreadPool make_pinned(int workers) {
    ThreadPoolOptions options;
    options.pin_workers = true;
    return GilThreadPool(workers, GilThreadPool::kDefaultSwitchInterval, std::move(options));
  }
  static GilThreadPool make_refreshing(int workers) { return make(workers); }
};

template <>
struct PoolTraits<FreeThreadPool> {
  static constexpr bool kTasksSeeTestMemory = true;
  static constexpr bool kCallbacksRunInTheCaller = false;
  static constexpr bool kTerminateLetsRunningTasksFinish = true;
  static constexpr bool kZeroWorkersMeansAll = false;
  static constexpr bool kHasInitializer = true;
  static FreeThreadPool make(int workers) { return FreeThreadPool(workers); }
  static FreeThreadPool make(int workers, std::function<void()> initializer) {
    ThreadPoolOptions options;
    options.initializer = std::move(initializer);
    return FreeThreadPool(workers, std::move(options));
  }
  static constexpr bool kPinsWorkers = true;
  static constexpr bool kQueuesTasksOnWorkers = false;
  static FreeThreadPool make_pinned(int workers) {
    ThreadPoolOptions options;
    options.pin_workers = true;
    return FreeThreadPool(workers, std::move(options));
  }
  static FreeThreadPool make_refreshing(int workers) { return make(workers); }
};

template <>
struct PoolTraits<MpiPool> {
  static constexpr bool kTasksSeeTestMemory = false;  // worker ranks are other programs
  static constexpr bool kCallbacksRunInTheCaller = true;
  static constexpr bool kTerminateLetsRunningTasksFinish = false;  // their results are dropped
  static constexpr bool kZeroWorkersMeansAll = true;
  static constexpr bool kHasInitializer = false;
  static constexpr bool kPinsWorkers = false;  // mpirun and Slurm place the ranks
  // Rank 0 sends a rank its next task before the one it runs is done, to hide the latency.
  static constexpr bool kQueuesTasksOnWorkers = true;
  // Every worker rank: the job's size fixes the pool's, whatever `workers` asks. A template only
  // so that this header compiles without pool/mpi_pool.h.
  template <class Mpi = MpiPool>
  static Mpi make(int /*workers*/) {
    return Mpi();
  }
};

// ---------------------------------------------------------------------------------------------
// What tasks do, counted where the test sees it.

inline constexpr auto kPatience = std::chrono::seconds(20);
inline constexpr int kMaxInitializerRuns = 64;

struct ContractCounters {
  std::atomic<int> calls;         // counted tasks that ran
  std::atomic<int> running;       // counted tasks running now
  std::atomic<int> most_running;  // the most counted tasks that ran at once
  std::atomic<int> started;       // held tasks that began
  std::atomic<int> gate;          // 0: held tasks wait; 1: they go on
  std::atomic<int> initializer_runs;
  std::atomic<int> initializer_threads[kMaxInitializerRuns];  // the kernel's thread ids
};
static_assert(std::atomic<int>::is_always_lock_free, "atomics in shared memory need no lock");

// Mapped on first use (the fixture's SetUp, before any pool forks) and kept for the whole binary.
inline ContractCounters& counters() {
  static SharedObject<ContractCounters>* const shared = new SharedObject<ContractCounters>();
  return *shared->get();
}

inline void reset_counters() {
  ContractCounters& c = counters();
  for (std::atomic<int>* counter :
       {&c.calls, &c.running, &c.most_running, &c.started, &c.gate, &c.initializer_runs}) {
    *counter = 0;
  }
  for (std::atomic<int>& thread : c.initializer_threads) thread = 0;
}

inline void open_gate() { counters().gate = 1; }

// Opens the gate when a test ends, before the pool declared ahead of it waits for its tasks.
struct OpenGateAtExit {
  OpenGateAtExit() = default;
  OpenGateAtExit(const OpenGateAtExit&) = delete;
  OpenGateAtExit& operator=(const OpenGateAtExit&) = delete;
  ~OpenGateAtExit() { open_gate(); }
};

// Waits in the test's thread until done() holds; false after kPatience.
template <class Condition>
bool eventually(Condition done) {
  const auto until = std::chrono::steady_clock::now() + kPatience;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Task functions.

inline long square(long x) { return x * x; }
inline long square_of_int(int x) { return static_cast<long>(x) * x; }
inline int identity(int x) { return x; }

// Counted in calls and running; sleeps 2 ms (without the GIL, so sleeping tasks overlap).
inline int counted_sleep(int x) {
  ++counters().running;
  pool::gil::sleep_for(std::chrono::milliseconds(2));
  --counters().running;
  ++counters().calls;
  return x;
}

inline void add_calls(int n) { counters().calls += n; }
inline void count_call() { ++counters().calls; }

// Counted in running and most_running; stays until `together` tasks ran at once (at most
// kPatience), so that a pool that runs them one by one is seen doing so.
inline int overlapping(int task, int together) {
  ContractCounters& c = counters();
  const int now = ++c.running;
  int most = c.most_running.load();
  while (now > most && !c.most_running.compare_exchange_weak(most, now)) {
  }
  const auto until = std::chrono::steady_clock::now() + kPatience;
  while (c.most_running.load() < together && std::chrono::steady_clock::now() < until) {
    pool::gil::sleep_for(std::chrono::milliseconds(1));
  }
  pool::gil::sleep_for(std::chrono::milliseconds(1));
  --c.running;
  return task;
}

// Counted in started; holds its worker until the test opens the gate, for at most `limit_ms` (a
// task on another MPI rank, which cannot see the gate, is held that long). Returns limit_ms.
inline int held(int limit_ms) {
  ++counters().started;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
  while (counters().gate.load() == 0 && std::chrono::steady_clock::now() < until) {
    pool::gil::sleep_for(std::chrono::milliseconds(1));
  }
  return limit_ms;
}

// How long tests hold a task: until the gate opens where tasks see it, else for 1 s.
template <class P>
inline constexpr int kHoldMs = PoolTraits<P>::kTasksSeeTestMemory ? 20'000 : 1'000;

// What a worker's initializer sets: each worker thread (or process) has its own.
inline thread_local int t_worker_setting = 0;
inline int read_worker_setting(int) { return t_worker_setting; }

// The CPUs the calling thread may run on, as /proc shows them ("0-3", "1").
inline std::string cpus_allowed_list(int) {
  std::ifstream status("/proc/thread-self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Cpus_allowed_list:", 0) == 0)
      return line.substr(line.find_first_not_of(" \t", 18));
  }
  return "?";
}
inline void record_initializer() {
  const int run = counters().initializer_runs++;
  if (run < kMaxInitializerRuns) counters().initializer_threads[run] = static_cast<int>(::gettid());
  t_worker_setting = 42;
}

// An associative but not commutative operation, so that a fold in the wrong order gives another
// (exact) result: 2x2 matrix products, modulo 2^64.
using Matrix = std::array<std::uint64_t, 4>;
inline constexpr Matrix kIdentity{1, 0, 0, 1};
inline Matrix multiply(const Matrix& a, const Matrix& b) {
  return {a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3], a[2] * b[0] + a[3] * b[2],
          a[2] * b[1] + a[3] * b[3]};
}
inline Matrix matrix_of(long x) {
  const auto v = static_cast<std::uint64_t>(x);
  return {v, 1, 1, v % 3};
}

inline std::string letter(int i) { return std::string(1, static_cast<char>('a' + i % 26)); }

inline std::vector<int> iota_vector(int n) {
  std::vector<int> values(static_cast<std::size_t>(n));
  std::iota(values.begin(), values.end(), 0);
  return values;
}

// The TaskError in `error`; a failure of the test if it holds anything else.
inline TaskError task_error_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const TaskError& task_error) {
    return task_error;
  } catch (...) {
    ADD_FAILURE() << "failed with something other than a TaskError";
  }
  return TaskError(-1, "", "");
}

// ---------------------------------------------------------------------------------------------
// The suite.

template <class P>
class PoolContract : public NoLeftoversTest {
 protected:
  void SetUp() override { reset_counters(); }
};

TYPED_TEST_SUITE_P(PoolContract);

// map ------------------------------------------------------------------------------------------

TYPED_TEST_P(PoolContract, MapKeepsInputOrderForEveryChunksize) {
  auto workers = PoolTraits<TypeParam>::make(3);
  std::vector<long> squares(1000);
  for (long i = 0; i < 1000; ++i) squares[static_cast<std::size_t>(i)] = i * i;
  const std::vector<int> inputs = iota_vector(1000);
  for (std::size_t chunksize : {0u, 1u, 7u, 999u, 5000u}) {
    EXPECT_EQ(workers.map(square, pool::range(0L, 1000L), chunksize), squares)
        << "chunksize " << chunksize;
    const auto text = workers.map([](int x) { return std::to_string(x); }, inputs, chunksize);
    ASSERT_EQ(text.size(), inputs.size());
    for (int i = 0; i < 1000; ++i) {
      ASSERT_EQ(text[static_cast<std::size_t>(i)], std::to_string(i)) << "chunksize " << chunksize;
    }
  }
  std::vector<long> longs(1000);
  std::iota(longs.begin(), longs.end(), 0L);
  EXPECT_EQ(workers.map([](long x) { return x * x; }, longs, 3), squares);
}

TYPED_TEST_P(PoolContract, MapOfAnEmptyInputIsEmptyAndMapAsyncRunsItsCallbackOnce) {
  auto workers = PoolTraits<TypeParam>::make(2);
  EXPECT_TRUE(workers.map(square, std::vector<long>{}).empty());
  EXPECT_TRUE(workers.map(square, pool::range(5L, 5L)).empty());
  std::atomic<int> calls{0};
  auto result = workers.map_async(identity, std::vector<int>{}, 0,
                                  [&calls](const std::vector<int>&) { ++calls; });
  EXPECT_TRUE(result.get().empty());
  EXPECT_TRUE(result.successful());
  EXPECT_EQ(calls.load(), 1);
}

TYPED_TEST_P(PoolContract, SerializedItemsAndResultsTravelIntact) {
  auto workers = PoolTraits<TypeParam>::make(2);
  std::vector<std::string> words;
  for (int i = 0; i < 200; ++i) words.push_back(std::string(static_cast<std::size_t>(i), 'x'));
  const auto ones = workers.map(
      [](const std::string& word) { return std::vector<int>(word.size(), 1); }, words, 9);
  ASSERT_EQ(ones.size(), words.size());
  for (std::size_t i = 0; i < words.size(); ++i) EXPECT_EQ(ones[i], std::vector<int>(i, 1));
  const auto shouted = workers.map([](const std::string& word) { return word + "!"; }, words, 0);
  ASSERT_EQ(shouted.size(), words.size());
  for (std::size_t i = 0; i < words.size(); ++i) EXPECT_EQ(shouted[i], words[i] + "!");
  const std::list<std::string> listed{"a", "bb", "ccc", "dddd"};
  EXPECT_EQ(workers.imap([](const std::string& word) { return word + word; }, listed, 1).collect(),
            (std::vector<std::string>{"aa", "bbbb", "cccccc", "dddddddd"}));
}

TYPED_TEST_P(PoolContract, CapturedValuesTravelWithTheFunction) {
  auto workers = PoolTraits<TypeParam>::make(2);
  const long offset = 1000;
  const double scale = 0.5;
  const auto shifted =
      workers.map([offset, scale](long x) { return scale * (x + offset); }, pool::range(0L, 10L));
  ASSERT_EQ(shifted.size(), 10u);
  for (long x = 0; x < 10; ++x) EXPECT_EQ(shifted[static_cast<std::size_t>(x)], 0.5 * (x + 1000));
}

TYPED_TEST_P(PoolContract, AFunctionNamedWithFnRunsInEveryCall) {
  auto workers = PoolTraits<TypeParam>::make(2);
  std::vector<long> expected;
  for (long x = 0; x < 1000; ++x) expected.push_back(x * x);
  EXPECT_EQ(workers.map(pool::fn<&square>, pool::range(0L, 1000L)), expected);
  EXPECT_EQ(workers.imap(pool::fn<&square>, pool::range(0L, 1000L), 7).collect(), expected);
  EXPECT_EQ(workers.apply(pool::fn<&square>, 12L), 144L);
  EXPECT_EQ(workers.map_reduce(pool::fn<&square>, pool::range(0L, 1000L), std::plus<>(), 0L),
            std::accumulate(expected.begin(), expected.end(), 0L));
  // The same function given as a pointer gives the same results.
  EXPECT_EQ(workers.map(square, pool::range(0L, 1000L)), expected);
}

TYPED_TEST_P(PoolContract, ATaskErrorNamesTheLowestFailingIndexAndThePoolGoesOn) {
  auto workers = PoolTraits<TypeParam>::make(3);
  const auto fails_at_37_and_81 = [](int x) {
    if (x == 37 || x == 81) throw std::out_of_range("bad item " + std::to_string(x));
    return x;
  };
  try {
    workers.map(fails_at_37_and_81, pool::range(0, 100), 5);
    ADD_FAILURE() << "map returned although tasks threw";
  } catch (const TaskError& error) {
    EXPECT_EQ(error.task_index(), 37);
    EXPECT_EQ(error.type_name(), "std::out_of_range");
    EXPECT_EQ(error.message(), "bad item 37");
  }
  auto result = workers.map_async(fails_at_37_and_81, pool::range(0, 100), 1);
  result.wait();
  EXPECT_FALSE(result.successful());
  try {
    result.get();
    ADD_FAILURE() << "get() returned although tasks threw";
  } catch (const TaskError& error) {
    EXPECT_EQ(error.task_index(), 37);
    EXPECT_EQ(error.message(), "bad item 37");
  }
  EXPECT_EQ(workers.map(square, pool::range(0L, 4L)), (std::vector<long>{0, 1, 4, 9}));
  EXPECT_EQ(workers.map_async(identity, pool::range(0, 3)).get(), (std::vector<int>{0, 1, 2}));
}

TYPED_TEST_P(PoolContract, ALowerFailureIsFoundEvenWhenAHigherOneHappensFirst) {
  // Two workers handing out single items: a share-per-worker scheduler starts the second worker
  // at the middle, so 10,001 fails long before the first worker reaches 9,999.
  auto workers = PoolTraits<TypeParam>::make(2);
  const auto fails_at_9999_and_10001 = [](int x) {
    if (x == 9999 || x == 10001) throw std::out_of_range("bad item " + std::to_string(x));
    return x;
  };
  for (int attempt = 0; attempt < 3; ++attempt) {
    try {
      workers.map(fails_at_9999_and_10001, pool::range(0, 20000), 1);
      ADD_FAILURE() << "map returned although tasks threw";
    } catch (const TaskError& error) {
      EXPECT_EQ(error.task_index(), 9999);
    }
  }
  EXPECT_EQ(workers.map(square, pool::range(0L, 3L), 1), (std::vector<long>{0, 1, 4}));
}

// AsyncResult and callbacks -------------------------------------------------------------------

TYPED_TEST_P(PoolContract, MapAsyncGetReturnsTheResultsInOrderAndMayBeCalledAgain) {
  using namespace std::chrono_literals;
  auto workers = PoolTraits<TypeParam>::make(2);
  std::vector<long> squares(100);
  for (long i = 0; i < 100; ++i) squares[static_cast<std::size_t>(i)] = i * i;
  auto result = workers.map_async(square, pool::range(0L, 100L), 7);
  EXPECT_EQ(result.get(), squares);
  EXPECT_TRUE(result.ready());
  EXPECT_TRUE(result.successful());
  EXPECT_TRUE(result.wait(1ms));
  EXPECT_EQ(result.get(1s), squares);
  EXPECT_EQ(result.get(), squares);
  // A temporary input: the call keeps what it needs of it.
  auto doubled = workers.map_async([](int x) { return 2 * x; }, std::vector<int>{1, 2, 3}, 1);
  EXPECT_EQ(doubled.get(), (std::vector<int>{2, 4, 6}));
}

TYPED_TEST_P(PoolContract, CallbackRunsOnceWithTheResultsBeforeTheyAreReady) {
  auto workers = PoolTraits<TypeParam>::make(3);
  std::atomic<int> calls{0};
  std::atomic<int> error_calls{0};
  std::vector<long> seen;
  auto result = workers.map_async(
      square, pool::range(0L, 100L), 7,
      [&](const std::vector<long>& values) {
        ++calls;
        seen = values;
      },
      [&](std::exception_ptr) { ++error_calls; });
  result.wait();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(error_calls.load(), 0);
  const std::vector<long> values = result.get();
  EXPECT_EQ(seen, values);
  ASSERT_EQ(values.size(), 100u);
  EXPECT_EQ(values[99], 99L * 99L);
  result.wait();
  result.get();
  EXPECT_EQ(calls.load(), 1);
}

TYPED_TEST_P(PoolContract, ErrorCallbackRunsOnceWithTheTaskError) {
  auto workers = PoolTraits<TypeParam>::make(3);
  std::atomic<int> successes{0};
  std::vector<std::exception_ptr> errors;
  auto result = workers.map_async(
      [](int x) {
        if (x >= 17) throw std::invalid_argument("too big");
        return x;
      },
      iota_vector(60), 2, [&](const std::vector<int>&) { ++successes; },
      [&](std::exception_ptr error) { errors.push_back(error); });
  EXPECT_THROW(result.get(), TaskError);
  EXPECT_FALSE(result.successful());
  result.wait();
  EXPECT_EQ(successes.load(), 0);
  ASSERT_EQ(errors.size(), 1u);
  const TaskError error = task_error_of(errors[0]);
  EXPECT_EQ(error.task_index(), 17);
  EXPECT_EQ(error.type_name(), "std::invalid_argument");
  EXPECT_EQ(error.message(), "too big");
}

TYPED_TEST_P(PoolContract, ApplyAsyncWithArgsRunsItsCallbackOrItsErrorCallback) {
  auto workers = PoolTraits<TypeParam>::make(2);
  std::atomic<int> got{0};
  std::atomic<int> errors{0};
  auto power = workers.apply_async(
      [](int base, int exponent) {
        int value = 1;
        for (int i = 0; i < exponent; ++i) value *= base;
        return value;
      },
      pool::args(2, 10), [&](const int& value) { got = value; });
  EXPECT_EQ(power.get(), 1024);
  EXPECT_EQ(got.load(), 1024);
  auto failing =
      workers.apply_async([](int) -> int { throw std::runtime_error("no"); }, pool::args(1),
                          [&](const int&) { got = -1; }, [&](std::exception_ptr) { ++errors; });
  EXPECT_THROW(failing.get(), TaskError);
  EXPECT_EQ(errors.load(), 1);
  EXPECT_EQ(got.load(), 1024);
}

TYPED_TEST_P(PoolContract, CallbacksRunInTheCallerOrInAPoolThreadAsThePoolSays) {
  auto workers = PoolTraits<TypeParam>::make(2);
  std::thread::id callback_thread;
  std::thread::id error_callback_thread;
  workers
      .apply_async(identity, pool::args(1),
                   [&](const int&) { callback_thread = std::this_thread::get_id(); })
      .get();
  workers
      .apply_async([](int) -> int { throw std::runtime_error("no"); }, pool::args(1), {},
                   [&](std::exception_ptr) { error_callback_thread = std::this_thread::get_id(); })
      .wait();
  ASSERT_NE(callback_thread, std::thread::id()) << "the callback did not run";
  ASSERT_NE(error_callback_thread, std::thread::id()) << "the error_callback did not run";
  if constexpr (PoolTraits<TypeParam>::kCallbacksRunInTheCaller) {
    EXPECT_EQ(callback_thread, std::this_thread::get_id());
    EXPECT_EQ(error_callback_thread, std::this_thread::get_id());
  } else {
    EXPECT_NE(callback_thread, std::this_thread::get_id());
    EXPECT_NE(error_callback_thread, std::this_thread::get_id());
  }
}

// apply, starmap -------------------------------------------------------------------------------

TYPED_TEST_P(PoolContract, ApplyRunsAFunctionOfSeveralArgumentsOrAVoidFunction) {
  auto workers = PoolTraits<TypeParam>::make(2);
  EXPECT_EQ(workers.apply([](int a, double b, std::string c) { return c + std::to_string(a * b); },
                          2, 1.5, std::string("x=")),
            "x=3.000000");
  EXPECT_EQ(workers.apply([](int a, const std::string& b) { return b + std::to_string(a); }, 7,
                          std::string("x")),
            "x7");
  EXPECT_EQ(workers.apply([](int a, int b) { return a - b; }, 10, 3), 7);
  static_assert(std::is_void_v<decltype(workers.apply(add_calls, 5))>);
  workers.apply(add_calls, 5);
  workers.apply_async(count_call).get();
  if constexpr (PoolTraits<TypeParam>::kTasksSeeTestMemory) {
    EXPECT_EQ(counters().calls.load(), 6);
  }
  try {
    workers.apply([](int) -> int { throw std::length_error("long"); }, 1);
    ADD_FAILURE() << "apply returned although the task threw";
  } catch (const TaskError& error) {
    EXPECT_EQ(error.task_index(), 0);
    EXPECT_EQ(error.type_name(), "std::length_error");
  }
  EXPECT_THROW(workers.apply([] { throw std::runtime_error("no"); }), TaskError);
}

TYPED_TEST_P(PoolContract, ApplyAsyncCallsRunConcurrently) {
  auto workers = PoolTraits<TypeParam>::make(3);
  // Where tasks cannot see the counters, waiting for the others would only wait for kPatience.
  const int together = PoolTraits<TypeParam>::kTasksSeeTestMemory ? workers.size() : 0;
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 10; ++i) results.push_back(workers.apply_async(overlapping, i, together));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(results[static_cast<std::size_t>(i)].get(), i);
  if constexpr (PoolTraits<TypeParam>::kTasksSeeTestMemory) {
    EXPECT_EQ(counters().most_running.load(), workers.size());
  }
}

TYPED_TEST_P(PoolContract, StarmapUnpacksTuplesPairsAndArrays) {
  auto workers = PoolTraits<TypeParam>::make(3);
  const std::vector<std::tuple<int, int, std::string>> triples{{1, 2, "a"}, {3, 4, "b"}};
  EXPECT_EQ(
      workers.starmap([](int a, int b, const std::string& s) { return s + std::to_string(a + b); },
                      triples),
      (std::vector<std::string>{"a3", "b7"}));
  const std::vector<std::tuple<int, std::string>> counted{{1, "a"}, {2, "b"}, {3, "c"}};
  EXPECT_EQ(
      workers.starmap([](int n, const std::string& s) { return std::string(n, s[0]); }, counted),
      (std::vector<std::string>{"a", "bb", "ccc"}));
  std::vector<std::pair<int, int>> pairs;
  for (int i = 0; i < 100; ++i) pairs.emplace_back(i, 2 * i);
  const auto sums = workers.starmap([](int a, int b) { return a + b; }, pairs, 7);
  ASSERT_EQ(sums.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sums[static_cast<std::size_t>(i)], 3 * i);
  const std::vector<std::array<double, 2>> halves{{1.0, 2.0}};
  EXPECT_EQ(workers.starmap_async([](double a, double b) { return a / b; }, halves).get(),
            (std::vector<double>{0.5}));
  const std::vector<std::array<int, 3>> products{{1, 2, 3}, {4, 5, 6}};
  EXPECT_EQ(workers.starmap_async([](int a, int b, int c) { return a * b * c; }, products).get(),
            (std::vector<int>{6, 120}));
  EXPECT_EQ(workers.starmap([](int a, int b) { counters().calls += b - a; }, pairs).size(), 100u);
  if constexpr (PoolTraits<TypeParam>::kTasksSeeTestMemory) {
    EXPECT_EQ(counters().calls.load(), 4950);  // the sum of b - a = i
  }
}

// imap, imap_unordered -------------------------------------------------------------------------

TYPED_TEST_P(PoolContract, ImapYieldsInInputOrderForEveryChunksize) {
  using namespace std::chrono_literals;
  auto workers = PoolTraits<TypeParam>::make(3);
  const std::vector<int> inputs = iota_vector(3000);  // several batches
  for (std::size_t chunksize : {1u, 3u, 100u}) {
    std::vector<std::string> out;
    for (const std::string& s : workers.imap(
             [](int x) {
               if (x % 97 == 0) pool::gil::sleep_for(200us);  // finish out of order
               return std::to_string(x);
             },
             inputs, chunksize)) {
      out.push_back(s);
    }
    ASSERT_EQ(out.size(), inputs.size()) << "chunksize " << chunksize;
    for (int i = 0; i < 3000; ++i) {
      ASSERT_EQ(out[static_cast<std::size_t>(i)], std::to_string(i)) << "chunksize " << chunksize;
    }
  }
}

TYPED_TEST_P(PoolContract, ImapReadsAnUnsizedInputInPlaceOrMovedIntoTheStream) {
  auto workers = PoolTraits<TypeParam>::make(3);
  auto multiples_of_three =
      std::views::iota(0, 5000) | std::views::filter([](int x) { return x % 3 == 0; });
  static_assert(!std::ranges::sized_range<decltype(multiples_of_three)>);
  std::vector<long> expected;
  for (int x : multiples_of_three) expected.push_back(static_cast<long>(x) * x);
  EXPECT_EQ(workers.imap(square_of_int, multiples_of_three).collect(), expected);  // in place
  EXPECT_EQ(
      workers
          .imap(square_of_int,
                std::views::iota(0, 5000) | std::views::filter([](int x) { return x % 3 == 0; }), 4)
          .collect(),
      expected);  // moved into the stream
  auto odd = std::views::iota(0, 20000) | std::views::filter([](int x) { return x % 2 == 1; });
  long long total = 0;
  std::size_t count = 0;
  for (int value : workers.imap(identity, odd, 16)) {
    total += value;
    ++count;
  }
  EXPECT_EQ(count, 10000u);
  EXPECT_EQ(total, 10000LL * 10000LL);
}

TYPED_TEST_P(PoolContract, ImapKeepsAnRvalueInputAliveForTheStream) {
  auto workers = PoolTraits<TypeParam>::make(2);
  auto sizes = workers.imap([](const std::string& s) { return s.size(); },
                            std::vector<std::string>{"a", "bb", std::string(1000, 'c'), ""});
  EXPECT_EQ(sizes.collect(), (std::vector<std::size_t>{1, 2, 1000, 0}));
  auto squares = workers.imap(square_of_int, std::vector<int>{1, 2, 3});
  EXPECT_EQ(squares.collect(), (std::vector<long>{1, 4, 9}));
}

TYPED_TEST_P(PoolContract, ImapUnorderedYieldsEveryIndexOnceWithItsResult) {
  using namespace std::chrono_literals;
  auto workers = PoolTraits<TypeParam>::make(3);
  std::set<std::size_t> indices;
  for (auto [index, value] : workers.imap_unordered(square, pool::range(0L, 10000L), 7)) {
    EXPECT_EQ(value, static_cast<long>(index * index));
    EXPECT_TRUE(indices.insert(index).second) << "index " << index << " twice";
  }
  EXPECT_EQ(indices.size(), 10000u);
  std::list<int> listed;  // not random access
  for (int i = 0; i < 2500; ++i) listed.push_back(i);
  std::vector<int> times_seen(2500, 0);
  std::size_t count = 0;
  for (const auto& [index, value] : workers.imap_unordered(
           [](int x) {
             if (x % 50 == 0) pool::gil::sleep_for(100us);
             return -x;
           },
           listed, 3)) {
    ASSERT_LT(index, 2500u);
    EXPECT_EQ(value, -static_cast<int>(index));
    ++times_seen[index];
    ++count;
  }
  EXPECT_EQ(count, 2500u);
  EXPECT_TRUE(std::all_of(times_seen.begin(), times_seen.end(), [](int n) { return n == 1; }));
}

TYPED_TEST_P(PoolContract, ImapThrowsAFailureAtItsPositionAfterEveryEarlierResult) {
  auto workers = PoolTraits<TypeParam>::make(3);
  auto stream = workers.imap(
      [](int x) {
        if (x == 1234 || x == 2000) throw std::domain_error("x");
        return x;
      },
      pool::range(0, 3000), 1);
  std::vector<int> seen;
  try {
    for (int x : stream) seen.push_back(x);
    ADD_FAILURE() << "the stream ended although a task threw";
  } catch (const TaskError& error) {
    EXPECT_EQ(error.task_index(), 1234);
    EXPECT_EQ(error.type_name(), "std::domain_error");
  }
  EXPECT_EQ(seen, iota_vector(1234));
  EXPECT_FALSE(stream.next().has_value()) << "the stream ends after its failure";
  // In chunks of 4, 1234 fails the chunk [1232, 1236): every chunk before it is yielded, and, as
  // in Python's imap, none of the failing chunk's own results.
  auto chunked = workers.imap(
      [](int x) {
        if (x == 1234) throw std::domain_error("x");
        return x;
      },
      pool::range(0, 3000), 4);
  seen.clear();
  try {
    for (int x : chunked) seen.push_back(x);
    ADD_FAILURE() << "the stream ended although a task threw";
  } catch (const TaskError& error) {
    EXPECT_EQ(error.task_index(), 1234);
  }
  EXPECT_EQ(seen, iota_vector(1232));
  EXPECT_EQ(workers.map(identity, pool::range(0, 3)), (std::vector<int>{0, 1, 2}));
}

TYPED_TEST_P(PoolContract, ImapUnorderedThrowsAFailureAfterTheResultsThatCameBefore) {
  auto workers = PoolTraits<TypeParam>::make(2);
  auto stream = workers.imap_unordered(
      [](int x) {
        if (x == 10) throw std::runtime_error("ten");
        return x;
      },
      pool::range(0, 20));
  std::set<std::size_t> seen;
  try {
    while (auto pair = stream.next()) {
      EXPECT_EQ(pair->second, static_cast<int>(pair->first));
      seen.insert(pair->first);
    }
    ADD_FAILURE() << "the stream ended although a task threw";
  } catch (const TaskError& error) {
    EXPECT_EQ(error.task_index(), 10);
  }
  EXPECT_EQ(seen.count(10), 0u);
  EXPECT_LT(seen.size(), 20u);
  EXPECT_FALSE(stream.next().has_value()) << "the stream ends after its failure";
}

TYPED_TEST_P(PoolContract, StreamFailuresNameTheInputIndexAlsoBeyondTheFirstBatch) {
  auto workers = PoolTraits<TypeParam>::make(2);
  const auto fail_at_9000 = [](int x) {
    if (x == 9000) throw std::runtime_error("late");
    return x;
  };
  std::size_t yielded = 0;
  try {
    for ([[maybe_unused]] int value : workers.imap(fail_at_9000, pool::range(0, 20000))) ++yielded;
    ADD_FAILURE() << "the stream ended without the failure";
  } catch (const TaskError& error) {
    EXPECT_EQ(error.task_index(), 9000);
  }
  EXPECT_EQ(yielded, 9000u);
  try {
    for ([[maybe_unused]] auto pair : workers.imap_unordered(fail_at_9000, pool::range(0, 20000))) {
    }
    ADD_FAILURE() << "the stream ended without the failure";
  } catch (const TaskError& error) {
    EXPECT_EQ(error.task_index(), 9000);
  }
}

TYPED_TEST_P(PoolContract, DroppingAStreamEarlyCancelsItsWorkAndThePoolGoesOn) {
  constexpr int kItems = 100'000;  // 2 ms each: minutes of work, were it not cancelled
  auto workers = PoolTraits<TypeParam>::make(2);
  {
    auto stream = workers.imap(counted_sleep, pool::range(0, kItems));
    for (int i = 0; i < 10; ++i) ASSERT_EQ(stream.next(), std::optional<int>(i));
  }
  const int done_when_dropped = counters().calls.load();
  const int running_when_dropped = counters().running.load();
  // A cancelled chunk still queued would run before this call, which comes later.
  EXPECT_EQ(workers.map(identity, pool::range(0, 8), 1), iota_vector(8));
  if constexpr (PoolTraits<TypeParam>::kTasksSeeTestMemory) {
    // Streams keep two batches of about 4,000 items ahead of the reader: had dropping let them
    // run, more would be done. Only a stall of half a second between the tenth result and the
    // drop could let 500 tasks of 2 ms run on two workers.
    EXPECT_LT(done_when_dropped, 500);
    // Dropping the stream waited for its running tasks, and nothing of it ran afterwards.
    EXPECT_EQ(running_when_dropped, 0) << "a task of the dropped stream was still running";
    EXPECT_EQ(counters().calls.load(), done_when_dropped) << "a task ran after the drop";
  }
}

// map_reduce -----------------------------------------------------------------------------------

TYPED_TEST_P(PoolContract, MapReduceEqualsTheSerialFoldForEveryChunksize) {
  auto workers = PoolTraits<TypeParam>::make(3);
  std::vector<long> values(5'000);
  std::iota(values.begin(), values.end(), -300L);
  long serial = 0;
  for (long x : values) serial += x * x;
  const auto range = pool::range(0L, 10'000L);
  long range_serial = 0;
  for (long x : range) range_serial += x * x;
  Matrix ordered = kIdentity;  // not commutative: the chunks must be combined in order
  for (long x : range) ordered = multiply(ordered, matrix_of(x));
  for (std::size_t chunksize : {0u, 1u, 7u, 1000u}) {
    EXPECT_EQ(workers.map_reduce(square, values, std::plus<>(), 0L, chunksize), serial)
        << "chunksize " << chunksize;
    EXPECT_EQ(workers.map_reduce(square, range, std::plus<>(), 0L, chunksize), range_serial)
        << "chunksize " << chunksize;
    EXPECT_EQ(workers.map_reduce(matrix_of, range, multiply, kIdentity, chunksize), ordered)
        << "chunksize " << chunksize;
  }
  EXPECT_EQ(workers.map_reduce(square, std::vector<long>{}, std::plus<>(), 42L), 42L);
}

TYPED_TEST_P(PoolContract, MapReduceFoldsSerializedValuesInInputOrder) {
  auto workers = PoolTraits<TypeParam>::make(3);
  std::string serial;
  for (int i = 0; i < 500; ++i) serial += letter(i);
  // Concatenation is associative but not commutative: only an in-order fold gets this right.
  EXPECT_EQ(workers.map_reduce(letter, pool::range(0, 500), std::plus<>(), std::string(), 9),
            serial);
  EXPECT_EQ(workers.map_reduce(letter, pool::range(0, 52), std::plus<>(), std::string(), 5),
            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
}

TYPED_TEST_P(PoolContract, MapReduceTakesUnsizedAndNonRandomAccessInputs) {
  auto workers = PoolTraits<TypeParam>::make(3);
  const auto below_5000 =
      std::views::iota(0L) | std::views::take_while([](long x) { return x < 5000; });
  static_assert(!std::ranges::sized_range<decltype(below_5000)>);
  Matrix ordered = kIdentity;
  for (long x = 0; x < 5000; ++x) ordered = multiply(ordered, matrix_of(x));
  EXPECT_EQ(workers.map_reduce(matrix_of, below_5000, multiply, kIdentity), ordered);
  EXPECT_EQ(workers.map_reduce(matrix_of, below_5000, multiply, kIdentity, 13), ordered);
  std::list<long> listed;
  for (long x : below_5000) listed.push_back(x);
  EXPECT_EQ(workers.map_reduce(matrix_of, listed, multiply, kIdentity), ordered);
}

TYPED_TEST_P(PoolContract, MapReduceThrowsTheLowestFailingIndexAndThePoolGoesOn) {
  auto workers = PoolTraits<TypeParam>::make(3);
  try {
    workers.map_reduce(
        [](int x) {
          if (x == 333 || x == 900) throw std::runtime_error("bad");
          return x;
        },
        pool::range(0, 1000), std::plus<>(), 0, 4);
    ADD_FAILURE() << "map_reduce returned although tasks threw";
  } catch (const TaskError& error) {
    EXPECT_EQ(error.task_index(), 333);
    EXPECT_EQ(error.message(), "bad");
  }
  EXPECT_EQ(workers.map_reduce(square, pool::range(0L, 4L), std::plus<>(), 0L), 14L);
}

// Lifecycle ------------------------------------------------------------------------------------

TYPED_TEST_P(PoolContract, CallsAfterCloseThrowPoolNotRunning) {
  auto workers = PoolTraits<TypeParam>::make(2);
  const std::vector<int> inputs{1, 2, 3};
  workers.close();
  EXPECT_THROW(workers.map(identity, inputs), PoolNotRunning);
  EXPECT_THROW(workers.map(identity, std::vector<int>{}), PoolNotRunning);
  EXPECT_THROW(workers.map_async(identity, inputs), PoolNotRunning);
  EXPECT_THROW(workers.imap(identity, inputs), PoolNotRunning);
  EXPECT_THROW(workers.imap_unordered(identity, inputs), PoolNotRunning);
  EXPECT_THROW(
      workers.starmap([](int a, int b) { return a + b; }, std::vector<std::pair<int, int>>{{1, 2}}),
      PoolNotRunning);
  EXPECT_THROW(workers.apply(identity, 1), PoolNotRunning);
  EXPECT_THROW(workers.apply_async(identity, 1), PoolNotRunning);
  EXPECT_THROW(workers.map_reduce(identity, inputs, std::plus<>(), 0), PoolNotRunning);
  workers.join();
  EXPECT_THROW(workers.map(identity, inputs), PoolNotRunning);
}

TYPED_TEST_P(PoolContract, JoinBeforeCloseOrTerminateThrowsLogicErrorAndThePoolGoesOn) {
  auto workers = PoolTraits<TypeParam>::make(2);
  EXPECT_THROW(workers.join(), std::logic_error);
  EXPECT_EQ(workers.map(identity, pool::range(0, 3)), (std::vector<int>{0, 1, 2}));
}

TYPED_TEST_P(PoolContract, JoinWaitsForEverySubmittedCall) {
  auto workers = PoolTraits<TypeParam>::make(3);
  std::vector<AsyncResult<int>> applied;
  for (int i = 0; i < 12; ++i) applied.push_back(workers.apply_async(counted_sleep, i));
  auto mapped = workers.map_async(counted_sleep, pool::range(0, 4), 1);
  workers.close();
  workers.join();
  for (int i = 0; i < 12; ++i) {
    EXPECT_TRUE(applied[static_cast<std::size_t>(i)].ready()) << "call " << i;
    EXPECT_EQ(applied[static_cast<std::size_t>(i)].get(), i);
  }
  EXPECT_TRUE(mapped.ready());
  EXPECT_EQ(mapped.get(), (std::vector<int>{0, 1, 2, 3}));
  if constexpr (PoolTraits<TypeParam>::kTasksSeeTestMemory) {
    EXPECT_EQ(counters().calls.load(), 16);
  }
  EXPECT_NO_THROW(workers.join());
}

TYPED_TEST_P(PoolContract, JoinComputesTheRestOfAStreamStillBeingRead) {
  // Far more items than a stream posts ahead of its reader (two batches of a few thousand).
  constexpr int kItems = 50'000;
  auto workers = PoolTraits<TypeParam>::make(3);
  const std::vector<int> inputs = iota_vector(kItems);
  auto stream = workers.imap([](int x) { return x + 1; }, inputs);
  EXPECT_EQ(stream.next(), std::optional<int>(1));
  workers.close();
  workers.join();
  // As in Python, join() waits for the stream's remaining input, so it can be read afterwards.
  const std::vector<int> rest = stream.collect();
  ASSERT_EQ(rest.size(), static_cast<std::size_t>(kItems - 1));
  EXPECT_EQ(rest.front(), 2);
  EXPECT_EQ(rest.back(), kItems);
}

TYPED_TEST_P(PoolContract, AStreamMadeBeforeCloseRunsToItsEnd) {
  constexpr long kItems = 50'000;
  auto workers = PoolTraits<TypeParam>::make(2);
  auto squares = workers.imap([](long x) { return x * x; }, pool::range(0L, kItems));
  auto unordered = workers.imap_unordered([](long x) { return -x; }, pool::range(0L, kItems));
  workers.close();  // calls already made still run: their later batches are posted after this
  long expected = 0;
  for (long square : squares) {
    ASSERT_EQ(square, expected * expected);
    ++expected;
  }
  EXPECT_EQ(expected, kItems);
  long sum = 0;
  for (auto [index, value] : unordered) sum += static_cast<long>(index) + value;
  EXPECT_EQ(sum, 0);
  EXPECT_THROW((void)workers.imap([](long x) { return x; }, pool::range(0L, 3L)), PoolNotRunning);
  workers.join();
}

TYPED_TEST_P(PoolContract, TerminateFailsTheUnstartedCallsAndEveryLaterOne) {
  using Traits = PoolTraits<TypeParam>;
  constexpr int kHold = kHoldMs<TypeParam>;
  auto workers = Traits::make(2);
  const OpenGateAtExit open_gate_at_exit;
  std::vector<AsyncResult<int>> running;
  for (int i = 0; i < workers.size(); ++i) running.push_back(workers.apply_async(held, kHold));
  if constexpr (Traits::kTasksSeeTestMemory) {
    ASSERT_TRUE(eventually([&] {
      running.front().ready();  // lets a ProcessPool hand the calls out
      return counters().started.load() == workers.size();
    }));
  }
  std::atomic<int> error_calls{0};
  auto pending = workers.apply_async(
      identity, pool::args(2), [](const int&) {}, [&](std::exception_ptr) { ++error_calls; });
  auto pending_map = workers.map_async(identity, pool::range(0, 100));
  auto stream = workers.imap(identity, pool::range(0, 100));
  std::thread opener;
  bool failed_before_the_running_ended = false;
  if constexpr (Traits::kTerminateLetsRunningTasksFinish) {
    // terminate() waits for the running tasks, held at the gate: it opens once the pending calls
    // were failed, which terminate() does first.
    opener = std::thread([&] {
      failed_before_the_running_ended = pending.wait(kPatience);
      open_gate();
    });
  }
  workers.terminate();
  if (opener.joinable()) {
    opener.join();
    EXPECT_TRUE(failed_before_the_running_ended);
  }
  EXPECT_THROW(pending.get(), PoolNotRunning);
  EXPECT_EQ(error_calls.load(), 1);
  EXPECT_THROW(pending_map.get(), PoolNotRunning);
  EXPECT_THROW(stream.collect(), PoolNotRunning);
  for (auto& result : running) {
    if constexpr (Traits::kTerminateLetsRunningTasksFinish) {
      EXPECT_EQ(result.get(), kHold);
    } else {
      EXPECT_THROW(result.get(), PoolNotRunning);
    }
  }
  EXPECT_THROW(workers.map(identity, pool::range(0, 3)), PoolNotRunning);
  EXPECT_NO_THROW(workers.join());
}

TYPED_TEST_P(PoolContract, DestructorWaitsForSubmittedCalls) {
  std::optional<AsyncResult<std::vector<int>>> mapped;
  std::vector<AsyncResult<int>> applied;
  {
    auto workers = PoolTraits<TypeParam>::make(2);
    mapped = workers.map_async(counted_sleep, pool::range(0, 6), 1);
    for (int i = 0; i < 6; ++i) applied.push_back(workers.apply_async(counted_sleep, i));
  }
  EXPECT_TRUE(mapped->ready());
  EXPECT_EQ(mapped->get(), iota_vector(6));
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(applied[static_cast<std::size_t>(i)].ready()) << "call " << i;
    EXPECT_EQ(applied[static_cast<std::size_t>(i)].get(), i);
  }
  if constexpr (PoolTraits<TypeParam>::kTasksSeeTestMemory) {
    EXPECT_EQ(counters().calls.load(), 12);
  }
}

TYPED_TEST_P(PoolContract, ManyCallsInFlightAllGetTheirOwnResults) {
  auto workers = PoolTraits<TypeParam>::make(4);
  std::vector<AsyncResult<std::vector<int>>> maps;
  std::vector<AsyncResult<int>> applies;
  for (int i = 0; i < 40; ++i) {
    maps.push_back(workers.map_async([i](int x) { return x * i; }, pool::range(0, 50 + i), 3));
    applies.push_back(workers.apply_async([](int x) { return -x; }, i));
  }
  for (int i = 0; i < 40; ++i) {
    const std::vector<int> values = maps[static_cast<std::size_t>(i)].get();
    ASSERT_EQ(values.size(), static_cast<std::size_t>(50 + i));
    EXPECT_EQ(values.back(), (49 + i) * i);
    EXPECT_EQ(applies[static_cast<std::size_t>(i)].get(), -i);
  }
}

// Construction ---------------------------------------------------------------------------------

TYPED_TEST_P(PoolContract, RejectsANegativeWorkerCount) {
  EXPECT_THROW(TypeParam(-1), std::invalid_argument);
}

TYPED_TEST_P(PoolContract, ZeroWorkersIsRejectedOrMeansAsManyAsTheDefault) {
  if constexpr (PoolTraits<TypeParam>::kZeroWorkersMeansAll) {
    const int all = TypeParam().size();
    EXPECT_EQ(TypeParam(0).size(), all);
  } else {
    EXPECT_THROW(TypeParam(0), std::invalid_argument);
  }
}

TYPED_TEST_P(PoolContract, InitializerRunsOnceInEveryWorkerBeforeItsTasks) {
  using Traits = PoolTraits<TypeParam>;
  if constexpr (!Traits::kHasInitializer) {
    GTEST_SKIP() << "this pool takes no initializer";
  } else {
    {
      auto workers = Traits::make(3, record_initializer);
      if constexpr (Traits::kTasksSeeTestMemory) {
        EXPECT_EQ(counters().initializer_runs.load(), 3) << "the constructor waits for them";
      }
      EXPECT_EQ(workers.map(read_worker_setting, pool::range(0, 60), 1), std::vector<int>(60, 42));
    }
    EXPECT_EQ(t_worker_setting, 0) << "it ran in the caller";
    if constexpr (Traits::kTasksSeeTestMemory) {
      EXPECT_EQ(counters().initializer_runs.load(), 3);
      std::set<int> threads;
      for (int i = 0; i < 3; ++i) threads.insert(counters().initializer_threads[i].load());
      EXPECT_EQ(threads.size(), 3u) << "once in each worker";
      EXPECT_EQ(threads.count(static_cast<int>(::gettid())), 0u) << "it ran in the caller";
    }
  }
}

TYPED_TEST_P(PoolContract, AThrowingInitializerFailsTheConstructorWithInitializerError) {
  using Traits = PoolTraits<TypeParam>;
  if constexpr (!Traits::kHasInitializer) {
    GTEST_SKIP() << "this pool takes no initializer";
  } else {
    try {
      auto workers = Traits::make(
          2, +[] { throw std::runtime_error("no database"); });
      ADD_FAILURE() << "the constructor returned although the initializer threw";
    } catch (const InitializerError& error) {
      EXPECT_EQ(error.type_name(), "std::runtime_error");
      EXPECT_EQ(error.message(), "no database");
    }
  }
}

TYPED_TEST_P(PoolContract, PinnedWorkersRunEachOnOneCpuOfTheAllowedSet) {
  using Traits = PoolTraits<TypeParam>;
  if constexpr (!Traits::kPinsWorkers) {
    GTEST_SKIP() << "this pool's workers are placed by its launcher";
  } else {
    const std::vector<int> cpus = pool::allowed_cpus();
    ASSERT_FALSE(cpus.empty());
    std::set<std::string> allowed;  // worker i's CPU is cpus[i % cpus.size()]
    for (int i = 0; i < 3; ++i) allowed.insert(std::to_string(cpus[i % cpus.size()]));
    auto workers = Traits::make_pinned(3);
    const std::vector<std::string> lists = workers.map(cpus_allowed_list, pool::range(0, 300), 1);
    for (const std::string& list : std::set<std::string>(lists.begin(), lists.end())) {
      EXPECT_EQ(allowed.count(list), 1u) << "a worker may run on " << list;
    }
    if (cpus.size() > 1) {
      auto unpinned = Traits::make(2);
      EXPECT_NE(unpinned.map(cpus_allowed_list, pool::range(0, 2), 1)[0].find_first_of(",-"),
                std::string::npos)
          << "without pin_workers a worker may use every allowed CPU";
    }
  }
}

// Futures ---------------------------------------------------------------------------------------

// Sleeps `ms` milliseconds (releasing the GIL) and returns them; a negative `ms` throws at once.
inline int nap_ms(int ms) {
  if (ms < 0) throw std::invalid_argument("no nap");
  pool::gil::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

TYPED_TEST_P(PoolContract, AsCompletedYieldsFuturesInTheOrderTheyFinish) {
  auto workers = PoolTraits<TypeParam>::make(2);
  if (workers.size() < 2) GTEST_SKIP() << "the order needs two workers";
  // Two workers: 30 ms ends first, then 300 ms (started when it ended), then 900 ms. Where a
  // worker is sent its next task early, 300 ms may wait behind 900 ms: two tasks only.
  std::vector<int> naps{900, 30, 300};
  if (PoolTraits<TypeParam>::kQueuesTasksOnWorkers) naps.pop_back();
  std::vector<AsyncResult<int>> futures;
  for (int ms : naps) futures.push_back(workers.submit(nap_ms, ms));
  std::vector<int> order;
  for (const AsyncResult<int>& done : pool::as_completed(futures)) {
    AsyncResult<int> finished = done;
    EXPECT_TRUE(finished.done());
    order.push_back(finished.result());
  }
  std::sort(naps.begin(), naps.end());
  EXPECT_EQ(order, naps);
}

TYPED_TEST_P(PoolContract, WaitReturnsAtTheFirstDoneTheFirstFailureOrWhenAllAreDone) {
  auto workers = PoolTraits<TypeParam>::make(2);
  if (workers.size() < 2) GTEST_SKIP() << "the split needs two workers";
  {
    std::vector<AsyncResult<int>> futures{workers.submit(nap_ms, 900), workers.submit(nap_ms, 20)};
    auto [done, not_done] = pool::wait(futures, pool::FirstCompleted);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].exception(), nullptr);
    EXPECT_EQ(futures[1].result(), 20);
    ASSERT_EQ(not_done.size(), 1u);
    auto all = pool::wait(futures, pool::AllCompleted);
    EXPECT_EQ(all.done.size(), 2u);
    EXPECT_TRUE(all.not_done.empty());
  }
  {
    std::vector<AsyncResult<int>> futures{workers.submit(nap_ms, 900), workers.submit(nap_ms, -1)};
    auto [done, not_done] = pool::wait(futures, pool::FirstException);
    ASSERT_EQ(done.size(), 1u);
    ASSERT_NE(done[0].exception(), nullptr);
    EXPECT_THROW(std::rethrow_exception(done[0].exception()), TaskError);
    EXPECT_EQ(not_done.size(), 1u);
    EXPECT_EQ(futures[0].exception(), nullptr) << "it succeeds once done";
  }
}

TYPED_TEST_P(PoolContract, WaitAndAsCompletedGiveUpAtTheirTimeout) {
  auto workers = PoolTraits<TypeParam>::make(2);
  if (workers.size() < 2) GTEST_SKIP() << "a job of one rank runs its tasks in the caller";
  std::vector<AsyncResult<int>> futures{workers.submit(nap_ms, 800)};
  auto [done, not_done] = pool::wait(futures, pool::AllCompleted, std::chrono::milliseconds(20));
  EXPECT_TRUE(done.empty());
  EXPECT_EQ(not_done.size(), 1u);
  EXPECT_THROW(
      {
        for (const AsyncResult<int>& future :
             pool::as_completed(futures, std::chrono::milliseconds(20))) {
          (void)future;
        }
      },
      TimeoutError);
  EXPECT_THROW(futures[0].exception(std::chrono::milliseconds(1)), TimeoutError);
  EXPECT_EQ(futures[0].result(), 800) << "the work went on";
}

TYPED_TEST_P(PoolContract, ADoneCallbackRunsOnceWithTheFutureOrAtOnceWhenItIsDone) {
  auto workers = PoolTraits<TypeParam>::make(2);
  using namespace std::chrono_literals;
  auto seen = std::make_shared<std::atomic<int>>(0);
  AsyncResult<int> future = workers.submit(nap_ms, 50);
  future.add_done_callback([seen](AsyncResult<int> done) { *seen += done.result(); });
  future.wait();
  // A thread pool's worker runs it right after settling: give it the moment it needs.
  for (int i = 0; i < 1000 && seen->load() == 0; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(seen->load(), 50);
  future.add_done_callback([seen](AsyncResult<int> done) { *seen += done.result(); });
  EXPECT_EQ(seen->load(), 100) << "a callback added when done runs at once";
}

// Cancelling -------------------------------------------------------------------------------------

inline int counted_identity(int x) {
  ++counters().calls;
  return x;
}

TYPED_TEST_P(PoolContract, CancelDropsACallNoWorkerStartedAndThePoolGoesOn) {
  OpenGateAtExit open_at_exit;
  auto workers = PoolTraits<TypeParam>::make(2);
  constexpr int kHold = kHoldMs<TypeParam>;
  // Every worker busy (and, where a worker is sent its next task early, its queue full too).
  const int busy = workers.size() * (PoolTraits<TypeParam>::kQueuesTasksOnWorkers ? 2 : 1);
  std::vector<AsyncResult<int>> holders;
  for (int i = 0; i < busy; ++i) holders.push_back(workers.submit(held, kHold));
  if constexpr (PoolTraits<TypeParam>::kTasksSeeTestMemory) {
    ASSERT_TRUE(eventually([&] { return counters().started.load() == workers.size(); }));
  }
  AsyncResult<int> one = workers.submit(counted_identity, 7);
  auto many = workers.map_async(counted_identity, pool::range(0, 100));
  EXPECT_TRUE(one.cancel());
  EXPECT_TRUE(many.cancel());
  EXPECT_TRUE(one.cancelled());
  EXPECT_TRUE(one.done());
  EXPECT_THROW(one.result(), CancelledError);
  EXPECT_THROW(many.get(), CancelledError);
  EXPECT_TRUE(one.cancel()) << "cancelling again reports the cancelled call";
  open_gate();
  for (AsyncResult<int>& holder : holders) {
    EXPECT_EQ(holder.result(), kHold);
    EXPECT_FALSE(holder.cancel()) << "a finished call is not cancelled";
    EXPECT_FALSE(holder.cancelled());
  }
  EXPECT_EQ(workers.map(square, pool::range(0L, 3L)), (std::vector<long>{0, 1, 4}));
  if constexpr (PoolTraits<TypeParam>::kTasksSeeTestMemory) {
    EXPECT_EQ(counters().calls.load(), 0) << "a dropped call never ran";
  }
}

TYPED_TEST_P(PoolContract, CancelLeavesARunningCallToFinish) {
  if constexpr (!PoolTraits<TypeParam>::kTasksSeeTestMemory) {
    GTEST_SKIP() << "the test cannot see when a worker rank starts the task";
  } else {
    OpenGateAtExit open_at_exit;
    auto workers = PoolTraits<TypeParam>::make(2);
    AsyncResult<int> running = workers.submit(held, kHoldMs<TypeParam>);
    ASSERT_TRUE(eventually([] { return counters().started.load() == 1; }));
    EXPECT_FALSE(running.cancel());
    open_gate();
    EXPECT_EQ(running.result(), kHoldMs<TypeParam>);
    EXPECT_FALSE(running.cancelled());
  }
}

// Retries --------------------------------------------------------------------------------------

// Throws on every other call in its thread (or process, or rank): a retry on the same item, which
// runs where the failure happened, succeeds.
inline int flaky_identity(int x) {
  thread_local int calls = 0;
  if (x % 7 == 3 && calls++ % 2 == 0) throw std::runtime_error("flaky");
  return x;
}
inline int throws_on_3(int x) {
  if (x == 3) throw std::runtime_error("always");
  return x;
}

TYPED_TEST_P(PoolContract, RetryingOnErrorsCallsAThrowingTaskAgainOnItsItem) {
  auto workers = PoolTraits<TypeParam>::make(2);
  const std::vector<int> expected = iota_vector(50);
  EXPECT_EQ(
      workers.map(pool::retrying(flaky_identity, 1, pool::RetryOn::errors), pool::range(0, 50), 4),
      expected);
  EXPECT_EQ(workers.submit(pool::retrying(flaky_identity, 1, pool::RetryOn::errors), 10).result(),
            10);
  std::vector<int> streamed;
  for (int x : workers.imap(pool::retrying(flaky_identity, 1, pool::RetryOn::errors),
                            pool::range(0, 50), 3)) {
    streamed.push_back(x);
  }
  EXPECT_EQ(streamed, expected);
  try {
    workers.map(pool::retrying(throws_on_3, 2), pool::range(0, 10));
    ADD_FAILURE() << "a throwing task was retried without RetryOn::errors";
  } catch (const TaskError& error) {
    EXPECT_EQ(error.task_index(), 3);
  }
  EXPECT_THROW(
      workers.map(pool::retrying(throws_on_3, 2, pool::RetryOn::errors), pool::range(0, 10)),
      TaskError)
      << "retries run out";
}

// Nested pools -----------------------------------------------------------------------------------

// The pool a test's tasks call back into; tasks cannot capture it (a pointer cannot travel).
inline void* g_pool_under_test = nullptr;

template <class P>
int sum_on_a_pool_of_its_own(int n) {
  auto inner = PoolTraits<P>::make(2);
  int sum = 0;
  for (int value : inner.map(identity, pool::range(0, n))) sum += value;
  return sum;
}

template <class P>
int call_the_pool_it_runs_on(int x) {
  return static_cast<P*>(g_pool_under_test)->map(identity, pool::range(0, 3)).at(0) + x;
}

TYPED_TEST_P(PoolContract, ATaskMayRunAPoolOfItsOwnAndThePoolGoesOn) {
  if constexpr (std::is_same_v<TypeParam, MpiPool>) {
    GTEST_SKIP() << "worker ranks cannot make pools of their own";
  } else {
    auto workers = PoolTraits<TypeParam>::make(2);
    EXPECT_EQ(workers.map(sum_on_a_pool_of_its_own<TypeParam>, pool::range(1, 5), 1),
              (std::vector<int>{0, 1, 3, 6}));
    EXPECT_EQ(workers.map(square, pool::range(0L, 3L)), (std::vector<long>{0, 1, 4}));
  }
}

TYPED_TEST_P(PoolContract, ATaskCallingThePoolItRunsOnGetsALogicErrorNotAHang) {
  if constexpr (!PoolTraits<TypeParam>::kTasksSeeTestMemory) {
    GTEST_SKIP() << "worker ranks cannot reach rank 0's pool";
  } else {
    // One worker: waiting for itself would hang. A forked worker sees the global once the worker
    // forked before it was set has been replaced.
    auto workers = PoolTraits<TypeParam>::make_refreshing(1);
    g_pool_under_test = &workers;
    EXPECT_EQ(workers.map(identity, pool::range(0, 1)), std::vector<int>{0});
    try {
      workers.map(call_the_pool_it_runs_on<TypeParam>, pool::range(0, 2));
      ADD_FAILURE() << "the nested call returned";
    } catch (const TaskError& error) {
      EXPECT_EQ(error.type_name(), "std::logic_error") << error.what();
    }
    g_pool_under_test = nullptr;
    EXPECT_EQ(workers.map(square, pool::range(0L, 3L)), (std::vector<long>{0, 1, 4}));
  }
}

REGISTER_TYPED_TEST_SUITE_P(
    PoolContract, MapKeepsInputOrderForEveryChunksize,
    MapOfAnEmptyInputIsEmptyAndMapAsyncRunsItsCallbackOnce, SerializedItemsAndResultsTravelIntact,
    CapturedValuesTravelWithTheFunction, AFunctionNamedWithFnRunsInEveryCall,
    ATaskErrorNamesTheLowestFailingIndexAndThePoolGoesOn,
    ALowerFailureIsFoundEvenWhenAHigherOneHappensFirst,
    MapAsyncGetReturnsTheResultsInOrderAndMayBeCalledAgain,
    CallbackRunsOnceWithTheResultsBeforeTheyAreReady, ErrorCallbackRunsOnceWithTheTaskError,
    ApplyAsyncWithArgsRunsItsCallbackOrItsErrorCallback,
    CallbacksRunInTheCallerOrInAPoolThreadAsThePoolSays,
    ApplyRunsAFunctionOfSeveralArgumentsOrAVoidFunction, ApplyAsyncCallsRunConcurrently,
    StarmapUnpacksTuplesPairsAndArrays, ImapYieldsInInputOrderForEveryChunksize,
    ImapReadsAnUnsizedInputInPlaceOrMovedIntoTheStream, ImapKeepsAnRvalueInputAliveForTheStream,
    ImapUnorderedYieldsEveryIndexOnceWithItsResult,
    ImapThrowsAFailureAtItsPositionAfterEveryEarlierResult,
    ImapUnorderedThrowsAFailureAfterTheResultsThatCameBefore,
    StreamFailuresNameTheInputIndexAlsoBeyondTheFirstBatch,
    DroppingAStreamEarlyCancelsItsWorkAndThePoolGoesOn,
    MapReduceEqualsTheSerialFoldForEveryChunksize, MapReduceFoldsSerializedValuesInInputOrder,
    MapReduceTakesUnsizedAndNonRandomAccessInputs,
    MapReduceThrowsTheLowestFailingIndexAndThePoolGoesOn, CallsAfterCloseThrowPoolNotRunning,
    JoinBeforeCloseOrTerminateThrowsLogicErrorAndThePoolGoesOn, JoinWaitsForEverySubmittedCall,
    JoinComputesTheRestOfAStreamStillBeingRead, AStreamMadeBeforeCloseRunsToItsEnd,
    TerminateFailsTheUnstartedCallsAndEveryLaterOne, DestructorWaitsForSubmittedCalls,
    ManyCallsInFlightAllGetTheirOwnResults, RejectsANegativeWorkerCount,
    ZeroWorkersIsRejectedOrMeansAsManyAsTheDefault, InitializerRunsOnceInEveryWorkerBeforeItsTasks,
    AThrowingInitializerFailsTheConstructorWithInitializerError,
    PinnedWorkersRunEachOnOneCpuOfTheAllowedSet, ATaskMayRunAPoolOfItsOwnAndThePoolGoesOn,
    ATaskCallingThePoolItRunsOnGetsALogicErrorNotAHang,
    AsCompletedYieldsFuturesInTheOrderTheyFinish,
    WaitReturnsAtTheFirstDoneTheFirstFailureOrWhenAllAreDone,
    WaitAndAsCompletedGiveUpAtTheirTimeout, ADoneCallbackRunsOnceWithTheFutureOrAtOnceWhenItIsDone,
    CancelDropsACallNoWorkerStartedAndThePoolGoesOn, CancelLeavesARunningCallToFinish,
    RetryingOnErrorsCallsAThrowingTaskAgainOnItsItem);

}  // namespace pool::testing

#endif  // TESTS_POOL_CONTRACT_H_
