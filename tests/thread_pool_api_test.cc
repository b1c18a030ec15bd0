// Python's Pool API on both thread pools: async results and callbacks, concurrent calls, apply,
// starmap, imap and imap_unordered, map_reduce, the lifecycle (close, join, terminate) and the
// initializer. No test asserts on wall-clock time: overlap is counted, and waits that would hang
// if the pool misbehaved give up after a generous deadline so that the test fails instead.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <list>
#include <mutex>
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

// Waits, without the GIL, until condition() holds; false after kPatience.
template <class Condition>
bool eventually(Condition condition) {
  const auto until = std::chrono::steady_clock::now() + kPatience;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > until) return false;
    pool::gil::sleep_for(1ms);
  }
  return true;
}

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

std::vector<int> iota_vector(int n) {
  std::vector<int> values(static_cast<std::size_t>(n));
  std::iota(values.begin(), values.end(), 0);
  return values;
}

thread_local bool t_initialized = false;

template <class P>
P* new_pool(int ncores, pool::ThreadPoolOptions options) {
  if constexpr (std::is_same_v<P, pool::GilThreadPool>) {
    return new P(ncores, P::kDefaultSwitchInterval, std::move(options));
  } else {
    return new P(ncores, std::move(options));
  }
}

// An associative but not commutative operation on integers, so that a fold in the wrong order
// gives a different (and exact) result: 2x2 matrix products, modulo 2^64.
using Matrix = std::array<std::uint64_t, 4>;
constexpr Matrix kIdentity{1, 0, 0, 1};
Matrix multiply(const Matrix& a, const Matrix& b) {
  return {a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3], a[2] * b[0] + a[3] * b[2],
          a[2] * b[1] + a[3] * b[3]};
}
Matrix matrix_of(long x) {
  const auto v = static_cast<std::uint64_t>(x);
  return {v, 1, 1, v % 3};
}

template <class P>
class ThreadPoolApi : public ::testing::Test {};

TYPED_TEST_SUITE(ThreadPoolApi, pool::testing::ThreadPools, pool::testing::PoolName);

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

TYPED_TEST(ThreadPoolApi, MapAsyncFailsWithTheLowestFailingIndexAndThePoolStaysUsable) {
  TypeParam workers(3);
  auto result = workers.map_async(
      [](int x) {
        if (x == 5 || x == 9) throw std::out_of_range("bad " + std::to_string(x));
        return x;
      },
      pool::range(0, 40), 1);
  result.wait();
  EXPECT_FALSE(result.successful());
  try {
    result.get();
    FAIL() << "get() returned although tasks threw";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 5);
    EXPECT_EQ(error.type_name(), "std::out_of_range");
    EXPECT_EQ(error.message(), "bad 5");
  }
  EXPECT_EQ(workers.map_async([](int x) { return x + 1; }, pool::range(0, 3)).get(),
            (std::vector<int>{1, 2, 3}));
}

TYPED_TEST(ThreadPoolApi, MapAsyncOfAnEmptyInputSucceedsWithNoResults) {
  TypeParam workers(2);
  int calls = 0;
  auto result = workers.map_async([](int x) { return x; }, std::vector<int>{}, 0,
                                  [&](const std::vector<int>&) { ++calls; });
  EXPECT_TRUE(result.get().empty());
  EXPECT_EQ(calls, 1);
}

TYPED_TEST(ThreadPoolApi, CallbackRunsOnceWithTheResultsBeforeTheyAreReady) {
  TypeParam workers(3);
  std::atomic<int> calls{0};
  std::atomic<int> error_calls{0};
  std::vector<long> seen;
  auto result = workers.map_async([](long x) { return x * x; }, pool::range(0L, 100L), 7,
                                  [&](const std::vector<long>& values) {
                                    ++calls;
                                    seen = values;
                                  },
                                  [&](std::exception_ptr) { ++error_calls; });
  const std::vector<long> values = result.get();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(error_calls.load(), 0);
  EXPECT_EQ(seen, values);
  EXPECT_EQ(values[99], 99L * 99L);
}

TYPED_TEST(ThreadPoolApi, ErrorCallbackRunsOnceWithTheTaskError) {
  TypeParam workers(3);
  std::atomic<int> calls{0};
  std::atomic<int> error_calls{0};
  std::int64_t failed_index = -1;
  auto result = workers.map_async(
      [](int x) {
        if (x >= 17) throw std::invalid_argument("too big");
        return x;
      },
      iota_vector(60), 2, [&](const std::vector<int>&) { ++calls; },
      [&](std::exception_ptr error) {
        ++error_calls;
        try {
          std::rethrow_exception(error);
        } catch (const pool::TaskError& task_error) {
          failed_index = task_error.task_index();
        } catch (...) {
        }
      });
  EXPECT_THROW(result.get(), pool::TaskError);
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(error_calls.load(), 1);
  EXPECT_EQ(failed_index, 17);
}

TYPED_TEST(ThreadPoolApi, ApplyAsyncWithArgsRunsItsCallbacks) {
  TypeParam workers(2);
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
  EXPECT_THROW(failing.get(), pool::TaskError);
  EXPECT_EQ(errors.load(), 1);
  EXPECT_EQ(got.load(), 1024);
}

TYPED_TEST(ThreadPoolApi, OutstandingApplyAsyncCallsRunConcurrently) {
  TypeParam workers(4);
  Concurrency concurrency;
  std::vector<pool::AsyncResult<int>> results;
  for (int i = 0; i < 10; ++i) {
    results.push_back(workers.apply_async(
        [&concurrency](int task) {
          concurrency.enter();
          // Sleeping releases the GIL: the other calls get in, as Python threads do in time.sleep.
          eventually([&] { return concurrency.most.load() >= 4; });
          pool::gil::sleep_for(1ms);
          concurrency.leave();
          return task;
        },
        i));
  }
  for (int i = 0; i < 10; ++i) EXPECT_EQ(results[static_cast<std::size_t>(i)].get(), i);
  EXPECT_EQ(concurrency.most.load(), 4);
}

TYPED_TEST(ThreadPoolApi, ApplyRunsOneCallAndReturnsItsValueOrNothing) {
  TypeParam workers(2);
  std::atomic<int> calls{0};
  static_assert(std::is_void_v<decltype(workers.apply([&] { ++calls; }))>);
  workers.apply([&] { ++calls; });
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(workers.apply([](int a, const std::string& b) { return b + std::to_string(a); }, 7,
                          std::string("x")),
            "x7");
  auto void_result = workers.apply_async([&] { ++calls; });
  void_result.get();
  EXPECT_EQ(calls.load(), 2);
  try {
    workers.apply([](int) -> int { throw std::length_error("long"); }, 1);
    FAIL() << "apply returned although the task threw";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 0);
    EXPECT_EQ(error.type_name(), "std::length_error");
  }
}

TYPED_TEST(ThreadPoolApi, StarmapCallsFWithTheElementsOfTuplesPairsAndArrays) {
  TypeParam workers(3);
  const std::vector<std::tuple<int, std::string>> tuples{{1, "a"}, {2, "b"}, {3, "c"}};
  EXPECT_EQ(
      workers.starmap([](int n, const std::string& s) { return std::string(n, s[0]); }, tuples),
      (std::vector<std::string>{"a", "bb", "ccc"}));
  std::vector<std::pair<int, int>> pairs;
  for (int i = 0; i < 100; ++i) pairs.emplace_back(i, 2 * i);
  const auto sums = workers.starmap([](int a, int b) { return a + b; }, pairs, 7);
  ASSERT_EQ(sums.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sums[static_cast<std::size_t>(i)], 3 * i);
  const std::vector<std::array<int, 3>> triples{{1, 2, 3}, {4, 5, 6}};
  EXPECT_EQ(workers.starmap_async([](int a, int b, int c) { return a * b * c; }, triples).get(),
            (std::vector<int>{6, 120}));
  std::atomic<int> calls{0};
  EXPECT_EQ(workers.starmap([&](int, int) { ++calls; }, pairs).size(), 100u);
  EXPECT_EQ(calls.load(), 100);
}

TYPED_TEST(ThreadPoolApi, ImapYieldsInInputOrderForChunksizeOneAndThree) {
  TypeParam workers(3);
  const std::vector<int> inputs = iota_vector(3000);  // several batches
  for (std::size_t chunksize : {std::size_t{1}, std::size_t{3}}) {
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

TYPED_TEST(ThreadPoolApi, ImapTakesAnUnsizedView) {
  TypeParam workers(3);
  auto multiples_of_three =
      std::views::iota(0, 5000) | std::views::filter([](int x) { return x % 3 == 0; });
  static_assert(!std::ranges::sized_range<decltype(multiples_of_three)>);
  std::vector<long> expected;
  for (int x : multiples_of_three) expected.push_back(static_cast<long>(x) * x);
  auto square = [](int x) { return static_cast<long>(x) * x; };
  EXPECT_EQ(workers.imap(square, multiples_of_three).collect(), expected);  // lvalue, in place
  EXPECT_EQ(
      workers
          .imap(square,
                std::views::iota(0, 5000) | std::views::filter([](int x) { return x % 3 == 0; }), 4)
          .collect(),
      expected);  // rvalue, moved into the stream
}

TYPED_TEST(ThreadPoolApi, ImapKeepsAnRvalueInputAliveForTheStream) {
  TypeParam workers(2);
  auto stream = workers.imap([](const std::string& s) { return s.size(); },
                             std::vector<std::string>{"a", "bb", std::string(1000, 'c'), ""});
  EXPECT_EQ(stream.collect(), (std::vector<std::size_t>{1, 2, 1000, 0}));
}

TYPED_TEST(ThreadPoolApi, ImapUnorderedYieldsEveryIndexOnce) {
  TypeParam workers(4);
  std::list<int> inputs;  // not random access: the stream copies each batch
  for (int i = 0; i < 2500; ++i) inputs.push_back(i);
  std::vector<int> times_seen(2500, 0);
  std::size_t count = 0;
  for (const auto& [index, value] : workers.imap_unordered(
           [](int x) {
             if (x % 50 == 0) pool::gil::sleep_for(100us);
             return -x;
           },
           inputs, 3)) {
    ASSERT_LT(index, 2500u);
    EXPECT_EQ(value, -static_cast<int>(index));
    ++times_seen[index];
    ++count;
  }
  EXPECT_EQ(count, 2500u);
  EXPECT_TRUE(std::all_of(times_seen.begin(), times_seen.end(), [](int n) { return n == 1; }));
}

TYPED_TEST(ThreadPoolApi, ImapThrowsAFailureAtItsPositionAfterEveryEarlierResult) {
  TypeParam workers(3);
  for (std::size_t chunksize : {std::size_t{1}, std::size_t{5}}) {
    auto stream = workers.imap(
        [](int x) {
          if (x == 1234 || x == 2000) throw std::domain_error("x");
          return x;
        },
        pool::range(0, 3000), chunksize);
    std::vector<int> seen;
    try {
      for (int x : stream) seen.push_back(x);
      FAIL() << "the stream ended although a task threw; chunksize " << chunksize;
    } catch (const pool::TaskError& error) {
      EXPECT_EQ(error.task_index(), 1234) << "chunksize " << chunksize;
      EXPECT_EQ(error.type_name(), "std::domain_error");
    }
    EXPECT_EQ(seen, iota_vector(1234)) << "chunksize " << chunksize;
    EXPECT_FALSE(stream.next().has_value()) << "the stream ends after its failure";
  }
  EXPECT_EQ(workers.map([](int x) { return x; }, pool::range(0, 3)), (std::vector<int>{0, 1, 2}));
}

TYPED_TEST(ThreadPoolApi, ImapUnorderedThrowsAFailureAfterTheResultsThatCameBefore) {
  TypeParam workers(2);
  auto stream = workers.imap_unordered(
      [](int x) {
        if (x == 10) throw std::runtime_error("ten");
        return x;
      },
      pool::range(0, 20));
  std::size_t seen = 0;
  try {
    while (stream.next()) ++seen;
    FAIL() << "the stream ended although a task threw";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 10);
  }
  EXPECT_LT(seen, 20u);
}

TYPED_TEST(ThreadPoolApi, DestroyingAStreamEarlyCancelsTheWorkNotStarted) {
  TypeParam workers(2);
  constexpr int kItems = 100'000;
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
        pool::range(0, kItems));
    for (int i = 0; i < 10; ++i) ASSERT_EQ(stream.next(), std::optional<int>(i));
  }
  EXPECT_EQ(running.load(), 0) << "the stream's destructor waits for the running tasks";
  const int done_at_destruction = done.load();
  // The stream keeps two batches (2 x 1024 items) submitted; had its destructor let them run,
  // all would be done. Only a stall of half a second between the tenth result and the
  // destructor could let 500 tasks of 2 ms run on two threads.
  EXPECT_LT(done_at_destruction, 500);
  // A cancelled chunk still queued would run before this call, which comes later in the queue.
  EXPECT_EQ(workers.map([](int x) { return x; }, pool::range(0, 8), 1).size(), 8u);
  EXPECT_EQ(done.load(), done_at_destruction);
}

TYPED_TEST(ThreadPoolApi, MapReduceEqualsTheSerialFold) {
  TypeParam workers(3);
  auto square = [](long x) { return x * x; };
  auto plus = [](long a, long b) { return a + b; };
  std::vector<long> values(10'000);
  std::iota(values.begin(), values.end(), -300L);
  long serial = 0;
  for (long x : values) serial += x * x;
  const auto range = pool::range(0L, 200'000L);
  long range_serial = 0;
  for (long x : range) range_serial += x * x;
  Matrix ordered = kIdentity;  // not commutative: the chunks must be combined in order
  for (long x : range) ordered = multiply(ordered, matrix_of(x));
  for (std::size_t chunksize : {std::size_t{1}, std::size_t{7}, std::size_t{0}}) {
    EXPECT_EQ(workers.map_reduce(square, values, plus, 0L, chunksize), serial)
        << "chunksize " << chunksize;
    EXPECT_EQ(workers.map_reduce(square, range, plus, 0L, chunksize), range_serial)
        << "chunksize " << chunksize;
    EXPECT_EQ(workers.map_reduce(matrix_of, range, multiply, kIdentity, chunksize), ordered)
        << "chunksize " << chunksize;
  }
  EXPECT_EQ(workers.map_reduce(square, std::vector<long>{}, plus, 42L), 42L);
}

TYPED_TEST(ThreadPoolApi, MapReduceTakesUnsizedAndNonRandomAccessInputs) {
  TypeParam workers(3);
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

TYPED_TEST(ThreadPoolApi, MapReduceThrowsTheLowestFailingIndex) {
  TypeParam workers(3);
  try {
    workers.map_reduce(
        [](int x) {
          if (x == 333 || x == 900) throw std::runtime_error("bad");
          return x;
        },
        pool::range(0, 1000), [](int a, int b) { return a + b; }, 0, 4);
    FAIL() << "map_reduce returned although tasks threw";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 333);
  }
}

TYPED_TEST(ThreadPoolApi, CallsAfterCloseThrowPoolNotRunning) {
  TypeParam workers(2);
  auto identity = [](int x) { return x; };
  const std::vector<int> inputs{1, 2, 3};
  workers.close();
  EXPECT_THROW(workers.map(identity, inputs), pool::PoolNotRunning);
  EXPECT_THROW(workers.map(identity, std::vector<int>{}), pool::PoolNotRunning);
  EXPECT_THROW(workers.map_async(identity, inputs), pool::PoolNotRunning);
  EXPECT_THROW(workers.imap(identity, inputs), pool::PoolNotRunning);
  EXPECT_THROW(workers.imap_unordered(identity, inputs), pool::PoolNotRunning);
  EXPECT_THROW(
      workers.starmap([](int a, int b) { return a + b; }, std::vector<std::pair<int, int>>{{1, 2}}),
      pool::PoolNotRunning);
  EXPECT_THROW(workers.apply(identity, 1), pool::PoolNotRunning);
  EXPECT_THROW(workers.apply_async(identity, 1), pool::PoolNotRunning);
  EXPECT_THROW(workers.map_reduce(identity, inputs, std::plus<int>(), 0), pool::PoolNotRunning);
  workers.join();
  EXPECT_THROW(workers.map(identity, inputs), pool::PoolNotRunning);
}

TYPED_TEST(ThreadPoolApi, JoinBeforeCloseOrTerminateThrowsLogicError) {
  TypeParam workers(2);
  EXPECT_THROW(workers.join(), std::logic_error);
  EXPECT_EQ(workers.map([](int x) { return x; }, pool::range(0, 3)), (std::vector<int>{0, 1, 2}));
}

TYPED_TEST(ThreadPoolApi, JoinWaitsForEverySubmittedCallAndOpenStream) {
  TypeParam workers(3);
  std::atomic<int> done{0};
  std::vector<pool::AsyncResult<int>> results;
  for (int i = 0; i < 12; ++i) {
    results.push_back(workers.apply_async(
        [&](int x) {
          pool::gil::sleep_for(2ms);
          ++done;
          return x;
        },
        i));
  }
  const std::vector<int> inputs = iota_vector(5000);
  auto stream = workers.imap([](int x) { return x + 1; }, inputs);
  EXPECT_EQ(stream.next(), std::optional<int>(1));
  workers.close();
  workers.join();
  EXPECT_EQ(done.load(), 12);
  for (const auto& result : results) EXPECT_TRUE(result.ready());
  // As in Python, a stream still being read gets the rest of its input computed by join().
  const std::vector<int> rest = stream.collect();
  ASSERT_EQ(rest.size(), 4999u);
  EXPECT_EQ(rest.back(), 5000);
  EXPECT_NO_THROW(workers.join());
}

TYPED_TEST(ThreadPoolApi, TerminateFailsWorkNotStartedAndLetsRunningTasksFinish) {
  TypeParam workers(2);
  Gate gate;
  std::atomic<int> started{0};
  std::vector<pool::AsyncResult<int>> running;
  for (int i = 0; i < 2; ++i) {
    running.push_back(workers.apply_async([&] {
      ++started;
      return gate.wait() ? 1 : -1;
    }));
  }
  ASSERT_TRUE(eventually([&] { return started.load() == 2; }));
  std::atomic<int> error_calls{0};
  auto pending = workers.apply_async([](int x) { return x; }, pool::args(2), [](const int&) {},
                                     [&](std::exception_ptr) { ++error_calls; });
  auto pending_map = workers.map_async([](int x) { return x; }, pool::range(0, 100));
  auto stream = workers.imap([](int x) { return x; }, pool::range(0, 100));
  // terminate() waits for the running tasks, which wait for the gate: open it once the pending
  // work has been dropped.
  std::thread terminator([&] { workers.terminate(); });
  const bool dropped = pending.wait(kPatience);
  gate.open();
  terminator.join();
  ASSERT_TRUE(dropped);
  EXPECT_THROW(pending.get(), pool::PoolNotRunning);
  EXPECT_EQ(error_calls.load(), 1);
  EXPECT_THROW(pending_map.get(), pool::PoolNotRunning);
  EXPECT_THROW(stream.collect(), pool::PoolNotRunning);
  for (auto& result : running) EXPECT_EQ(result.get(), 1);
  EXPECT_THROW(workers.map([](int x) { return x; }, pool::range(0, 3)), pool::PoolNotRunning);
  EXPECT_NO_THROW(workers.join());
}

TYPED_TEST(ThreadPoolApi, DestructorCompletesTheSubmittedWork) {
  std::atomic<int> done{0};
  {
    TypeParam workers(2);
    for (int i = 0; i < 6; ++i) {
      workers.apply_async([&] {
        pool::gil::sleep_for(2ms);
        ++done;
      });
    }
  }
  EXPECT_EQ(done.load(), 6);
}

TYPED_TEST(ThreadPoolApi, InitializerRunsOnceInEachThreadBeforeItsTasks) {
  std::mutex mutex;
  std::set<std::thread::id> initialized_threads;
  int runs = 0;
  {
    std::unique_ptr<TypeParam> workers(new_pool<TypeParam>(3, {[&] {
                                                             std::lock_guard<std::mutex> g(mutex);
                                                             ++runs;
                                                             initialized_threads.insert(
                                                                 std::this_thread::get_id());
                                                             t_initialized = true;
                                                           }}));
    const auto flags = workers->map([](int) { return t_initialized; }, pool::range(0, 200), 1);
    EXPECT_TRUE(std::all_of(flags.begin(), flags.end(), [](bool b) { return b; }));
  }
  EXPECT_EQ(runs, 3);
  EXPECT_EQ(initialized_threads.size(), 3u);
  EXPECT_FALSE(t_initialized) << "the initializer ran in the caller's thread";
}

TYPED_TEST(ThreadPoolApi, ThrowingInitializerMakesTheConstructorThrowInitializerError) {
  try {
    std::unique_ptr<TypeParam> workers(
        new_pool<TypeParam>(3, {[] { throw std::runtime_error("no database"); }}));
    FAIL() << "the constructor returned although the initializer threw";
  } catch (const pool::InitializerError& error) {
    EXPECT_EQ(error.type_name(), "std::runtime_error");
    EXPECT_EQ(error.message(), "no database");
  }
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

TYPED_TEST(ThreadPoolApi, ManyCallsInFlightAllGetTheirOwnResults) {
  TypeParam workers(4);
  std::vector<pool::AsyncResult<std::vector<int>>> maps;
  std::vector<pool::AsyncResult<int>> applies;
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
