// The behaviours CPython's Lib/test/_test_multiprocessing.py checks for multiprocessing.Pool
// (_TestPool, _TestPoolWorkerErrors, _TestPoolWorkerLifetime, TestInitializers) and the broken
// pool of concurrent.futures' test_killed_child, as GoogleTest tests named after the Python tests.
//
// No test measures wall-clock time: tasks that must still be running when the test looks are held
// at a gate in shared memory, and what ran is counted there (a MAP_SHARED page mapped before any
// pool forks, so workers and threads alike see it).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <new>
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

namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// State shared by the test, its worker processes and threads.

constexpr int kMaxRecordedPids = 256;

struct SharedState {
  std::atomic<int> started;           // tasks that began
  std::atomic<int> finished;          // tasks that reached their end
  std::atomic<int> gate;              // 0: gated tasks wait; 1: they go on
  std::atomic<int> initializer_runs;  // initializer calls, in any process
  std::atomic<int> initializer_pids[kMaxRecordedPids];
};
static_assert(std::atomic<int>::is_always_lock_free, "atomics in shared memory need no lock");

// Mapped on first use, before any pool forks, and kept for the whole test binary.
SharedState& shared() {
  static pool::testing::SharedObject<SharedState>* const state =
      new pool::testing::SharedObject<SharedState>();
  return *state->get();
}

void reset_shared() {
  SharedState& state = shared();
  state.started = 0;
  state.finished = 0;
  state.gate = 0;
  state.initializer_runs = 0;
  for (auto& pid : state.initializer_pids) pid = 0;
}

// Waits until `done()` holds, for at most `limit`; true if it held.
bool eventually(const std::function<bool()>& done, std::chrono::seconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Holds a task until the test opens the gate (at most 20 s, so a failing test cannot hang).
void wait_at_gate() {
  for (int i = 0; i < 20'000 && shared().gate.load() == 0; ++i) pool::gil::sleep_for(1ms);
}

// Opens the gate when the test ends, before the pool declared ahead of it joins its workers.
struct OpenGateAtExit {
  ~OpenGateAtExit() { shared().gate = 1; }
};

// ---------------------------------------------------------------------------------------------
// Task functions (Python's sqr, mul, raising, ...).

int sqr(int x) { return x * x; }
int mul(int x, int y) { return x * y; }

// sqr held at the gate; counted in started and finished.
int gated_sqr(int x) {
  ++shared().started;
  wait_at_gate();
  ++shared().finished;
  return x * x;
}

// Python's time.sleep as a task: sleeps `ms` milliseconds.
int sleep_ms(int ms) {
  ++shared().started;
  pool::gil::sleep_for(std::chrono::milliseconds(ms));
  ++shared().finished;
  return ms;
}

[[maybe_unused]] void count_call() { ++shared().finished; }

int parse_int(const std::string& text) { return std::stoi(text); }

int raise_123() { throw std::runtime_error("123"); }
int raise_foo() { throw std::runtime_error("foo"); }
int raise_key_error() { throw std::out_of_range("key"); }

// Python's raise_large_valuerror: a 1 MiB message. Each task waits until both have started, so
// both run whichever fails first; then the one given `wait_ms` > 0 sleeps before it throws.
int raise_large_valueerror(int wait_ms) {
  ++shared().started;
  for (int i = 0; i < 20'000 && shared().started.load() < 2; ++i) pool::gil::sleep_for(1ms);
  pool::gil::sleep_for(std::chrono::milliseconds(wait_ms));
  ++shared().finished;
  throw std::invalid_argument(std::string(std::size_t{1} << 20, 'x'));
}

struct PidSquare {
  int pid;
  int square;
};

PidSquare pid_and_sqr(int x) { return {static_cast<int>(::getpid()), x * x}; }

PidSquare slow_pid_and_sqr(int x) {
  pool::gil::sleep_for(300ms);
  return pid_and_sqr(x);
}

int worker_pid(int) { return static_cast<int>(::getpid()); }

int kill_self(int) {
  ::kill(::getpid(), SIGKILL);
  return 0;
}

void record_initializer() {
  const int run = shared().initializer_runs.fetch_add(1);
  if (run < kMaxRecordedPids) shared().initializer_pids[run] = static_cast<int>(::getpid());
}

bool initializer_ran_in(int pid) {
  const int runs = std::min(shared().initializer_runs.load(), kMaxRecordedPids);
  for (int i = 0; i < runs; ++i) {
    if (shared().initializer_pids[i].load() == pid) return true;
  }
  return false;
}

// Per-process state an initializer sets up (what Python programs use initargs for).
int g_worker_setting = 0;

int read_worker_setting(int) { return g_worker_setting; }

// Python's class A whose __reduce__ raises: cereal cannot save or load it.
struct Unpicklable {
  std::string payload;
  template <class Archive>
  void serialize(Archive&) {
    throw std::runtime_error("cannot pickle");
  }
};

int payload_size(const Unpicklable& value) { return static_cast<int>(value.payload.size()); }
Unpicklable make_unpicklable(int) { return {}; }

// ---------------------------------------------------------------------------------------------
// Inputs.

std::vector<int> iota_vector(int n) {
  std::vector<int> values(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) values[static_cast<std::size_t>(i)] = i;
  return values;
}

std::vector<int> squares(int n) {
  std::vector<int> values;
  for (int i = 0; i < n; ++i) values.push_back(i * i);
  return values;
}

// Python's zip(range(n), range(n - 1, -1, -1)) and its starmap(mul, ...).
std::vector<std::tuple<int, int>> zipped(int n) {
  std::vector<std::tuple<int, int>> tuples;
  for (int i = 0; i < n; ++i) tuples.emplace_back(i, n - 1 - i);
  return tuples;
}
std::vector<int> products(int n) {
  std::vector<int> values;
  for (int i = 0; i < n; ++i) values.push_back(i * (n - 1 - i));
  return values;
}

// Python's SayWhenError, a ValueError.
class SayWhenError : public std::invalid_argument {
 public:
  SayWhenError() : std::invalid_argument("Somebody said when") {}
};

// Item i of an input, or SayWhenError when i == when.
struct SayWhen {
  int when;
  int operator()(int i) const {
    if (i == when) throw SayWhenError();
    return i;
  }
};

// Python's SpecialIterable and exception_throwing_generator for map, which needs a sized range:
// 0, 1, ..., total - 1, throwing SayWhenError when reading item `when`.
auto sized_say_when(int total, int when) {
  return std::views::iota(0, total) | std::views::transform(SayWhen{when});
}

// Python's exception_throwing_generator(total, when) as an unsized input view: yields 0, 1, ...,
// total - 1, but reading item `when` throws SayWhenError (when = 0: the very first next()).
class SayWhenGenerator : public std::ranges::view_interface<SayWhenGenerator> {
 public:
  class iterator {
   public:
    using value_type = int;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    iterator(int total, int when) : total_(total), when_(when) {}
    int operator*() const { return SayWhen{when_}(i_); }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    void operator++(int) { ++i_; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) {
      return it.i_ >= it.total_;
    }

   private:
    int i_ = 0;
    int total_ = 0;
    int when_ = -1;
  };

  SayWhenGenerator() = default;
  SayWhenGenerator(int total, int when) : total_(total), when_(when) {}
  iterator begin() const { return iterator(total_, when_); }
  std::default_sentinel_t end() const { return {}; }

 private:
  int total_ = 0;
  int when_ = -1;
};
static_assert(std::ranges::input_range<SayWhenGenerator> &&
              !std::ranges::sized_range<SayWhenGenerator> && std::ranges::view<SayWhenGenerator>);

// Reads `count` results from an imap stream expecting 0, 1, 4, ..., then expects SayWhenError,
// then the end of the stream.
template <class Stream>
void expect_squares_then_say_when(Stream& stream, int count) {
  for (int i = 0; i < count; ++i) {
    std::optional<int> value;
    try {
      value = stream.next();
    } catch (const SayWhenError&) {
      ADD_FAILURE() << "SayWhenError was thrown in place of result " << i << "; Python yields the "
                    << count << " results read before the failing item first";
      return;
    }
    EXPECT_EQ(value, std::optional<int>(i * i)) << "result " << i;
  }
  EXPECT_THROW(stream.next(), SayWhenError);
  EXPECT_EQ(stream.next(), std::nullopt) << "the stream ends at its failure";
}

// Reads an imap_unordered stream over SayWhenGenerator(total, when) until it throws: every pair
// must be (i, i * i) for a distinct i < when, and SayWhenError must come.
template <class Stream>
void expect_unordered_squares_then_say_when(Stream& stream, int total, int when) {
  std::set<std::size_t> seen;
  bool raised = false;
  try {
    for (int i = 0; i < total; ++i) {
      const auto pair = stream.next();
      ASSERT_TRUE(pair.has_value()) << "the stream ended without SayWhenError";
      EXPECT_LT(pair->first, static_cast<std::size_t>(when)) << "an item past the failing one";
      EXPECT_EQ(pair->second, static_cast<int>(pair->first * pair->first));
      EXPECT_TRUE(seen.insert(pair->first).second) << "index " << pair->first << " twice";
    }
  } catch (const SayWhenError&) {
    raised = true;
  }
  EXPECT_TRUE(raised);
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

class CpythonTest : public pool::testing::NoLeftoversTest {
 protected:
  void SetUp() override { reset_shared(); }
};

// Tests of behaviour every pool offers.
template <class P>
class CpythonPool : public CpythonTest {};

TYPED_TEST_SUITE(CpythonPool, pool::testing::AllPools, pool::testing::PoolName);

// Process pools can kill a running task (terminate); thread pools must let it end.
template <class P>
constexpr bool kKillsWorkers = std::is_same_v<P, pool::ProcessPool>;

// Tests of worker processes: killed workers, maxtasksperchild, initializers run after fork.
using CpythonProcessPool = CpythonTest;

// ProcessPoolOptions with these two set (designated initializers that skip a member warn).
pool::ProcessPoolOptions pool_options(std::uint64_t maxtasksperchild,
                                      std::function<void()> initializer = {}) {
  pool::ProcessPoolOptions options;
  options.maxtasksperchild = maxtasksperchild;
  options.initializer = std::move(initializer);
  return options;
}

// ---------------------------------------------------------------------------------------------
// _TestPool

// test_apply: apply(f, args) returns f(*args); Python's kwargs have no C++ form, so several
// arguments, a serialized argument and a void function are checked instead.
TYPED_TEST(CpythonPool, test_apply) {
  TypeParam workers(4);
  EXPECT_EQ(workers.apply(sqr, 5), 25);
  EXPECT_EQ(workers.apply(mul, 3, 4), 12);
  EXPECT_EQ(workers.apply(
                [](const std::string& text, int times) {
                  std::string out;
                  for (int i = 0; i < times; ++i) out += text;
                  return out;
                },
                std::string("ab"), 3),
            "ababab");
  workers.apply(count_call);
  EXPECT_EQ(shared().finished.load(), 1);
}

// test_map: map equals the serial map, with the default chunksize and with chunksize 20.
TYPED_TEST(CpythonPool, test_map) {
  TypeParam workers(4);
  EXPECT_EQ(workers.map(sqr, iota_vector(10)), squares(10));
  EXPECT_EQ(workers.map(sqr, iota_vector(100), 20), squares(100));
}

// test_starmap: starmap(mul, zip(...)) equals itertools.starmap, also with chunksize 20.
TYPED_TEST(CpythonPool, test_starmap) {
  TypeParam workers(4);
  EXPECT_EQ(workers.starmap(mul, zipped(10)), products(10));
  EXPECT_EQ(workers.starmap(mul, zipped(100), 20), products(100));
}

// test_starmap_async: starmap_async(mul, ...).get() equals itertools.starmap.
TYPED_TEST(CpythonPool, test_starmap_async) {
  TypeParam workers(4);
  EXPECT_EQ(workers.starmap_async(mul, zipped(100)).get(), products(100));
}

// test_map_async: map_async(sqr, ...).get() equals the serial map.
TYPED_TEST(CpythonPool, test_map_async) {
  TypeParam workers(4);
  EXPECT_EQ(workers.map_async(sqr, iota_vector(10)).get(), squares(10));
}

// test_map_async_callbacks: the callback gets the result list, the error_callback the exception,
// each once (Python's ValueError from int('a') is our TaskError naming std::invalid_argument).
TYPED_TEST(CpythonPool, test_map_async_callbacks) {
  TypeParam workers(4);
  std::vector<std::vector<int>> values;
  std::vector<std::exception_ptr> errors;
  auto on_value = [&values](const std::vector<int>& result) { values.push_back(result); };
  auto on_error = [&errors](std::exception_ptr error) { errors.push_back(error); };

  auto good = workers.map_async(parse_int, std::vector<std::string>{"1"}, 0, on_value, on_error);
  good.wait();
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(values[0], std::vector<int>{1});
  EXPECT_TRUE(errors.empty());

  auto bad = workers.map_async(parse_int, std::vector<std::string>{"a"}, 0, on_value, on_error);
  bad.wait();
  EXPECT_EQ(values.size(), 1u);
  ASSERT_EQ(errors.size(), 1u);
  try {
    std::rethrow_exception(errors[0]);
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 0);
    EXPECT_EQ(error.type_name(), "std::invalid_argument");
  } catch (...) {
    ADD_FAILURE() << "error_callback got something other than a TaskError";
  }
  // Waiting again runs no callback again.
  good.wait();
  bad.wait();
  EXPECT_EQ(values.size(), 1u);
  EXPECT_EQ(errors.size(), 1u);
}

// test_map_chunksize: map_async over an empty list with chunksize 1 does not stall (get(timeout)
// returns []).
TYPED_TEST(CpythonPool, test_map_chunksize) {
  TypeParam workers(4);
  try {
    EXPECT_EQ(workers.map_async(sqr, std::vector<int>{}, 1).get(5s), std::vector<int>{});
  } catch (const pool::TimeoutError&) {
    ADD_FAILURE() << "map_async with chunksize stalled on an empty list";
  }
}

// test_map_handle_iterable_exception: an exception raised while reading the input reaches the
// caller as itself (not as a task failure), repeatably, and the pool stays usable.
TYPED_TEST(CpythonPool, test_map_handle_iterable_exception) {
  TypeParam workers(4);
  EXPECT_THROW(workers.map(sqr, sized_say_when(1, 0), 1), SayWhenError);
  EXPECT_THROW(workers.map(sqr, sized_say_when(1, 0), 1), SayWhenError);
  EXPECT_THROW(workers.map(sqr, sized_say_when(10, 3), 1), SayWhenError);
  EXPECT_THROW(workers.map_async(sqr, sized_say_when(10, 3), 1).get(), SayWhenError);
  EXPECT_EQ(workers.map(sqr, iota_vector(5)), squares(5));
}

// test_async: apply_async(sqr, 7).get() is 49; Python also times get(); here the task is held at
// a gate instead, to check ready(), successful() and wait(timeout) before the result exists.
TYPED_TEST(CpythonPool, test_async) {
  TypeParam workers(4);
  OpenGateAtExit open_gate;
  auto result = workers.apply_async(gated_sqr, 7);
  EXPECT_FALSE(result.ready());
  EXPECT_THROW(result.successful(), std::logic_error);  // Python: ValueError
  EXPECT_FALSE(result.wait(20ms));
  shared().gate = 1;
  EXPECT_EQ(result.get(), 49);
  EXPECT_TRUE(result.ready());
  EXPECT_TRUE(result.successful());
  EXPECT_EQ(result.get(), 49);
}

// test_async_timeout: get(timeout) on a task still running raises TimeoutError; the pool is then
// terminated (ours: the dropped result then raises PoolNotRunning; threads cannot be killed, so
// there the task is let go first, as Python sets its event).
TYPED_TEST(CpythonPool, test_async_timeout) {
  TypeParam workers(3);
  OpenGateAtExit open_gate;
  auto result = workers.apply_async(gated_sqr, 6);
  EXPECT_THROW(result.get(50ms), pool::TimeoutError);
  EXPECT_FALSE(result.ready());
  if constexpr (!kKillsWorkers<TypeParam>) shared().gate = 1;
  workers.terminate();
  workers.join();
  if constexpr (kKillsWorkers<TypeParam>) {
    EXPECT_THROW(result.get(), pool::PoolNotRunning);
    EXPECT_EQ(shared().finished.load(), 0);
  }
}

// test_imap: imap yields f(x) in input order, through list(), next() and StopIteration (our
// next() returns nullopt at the end, repeatedly), also with chunksize 100.
TYPED_TEST(CpythonPool, test_imap) {
  TypeParam workers(4);
  EXPECT_EQ(workers.imap(sqr, iota_vector(10)).collect(), squares(10));

  std::vector<int> looped;
  for (int value : workers.imap(sqr, iota_vector(10))) looped.push_back(value);
  EXPECT_EQ(looped, squares(10));

  auto ten = workers.imap(sqr, iota_vector(10));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ten.next(), std::optional<int>(i * i));
  EXPECT_EQ(ten.next(), std::nullopt);
  EXPECT_EQ(ten.next(), std::nullopt);

  auto thousand = workers.imap(sqr, iota_vector(1000), 100);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(thousand.next(), std::optional<int>(i * i));
  EXPECT_EQ(thousand.next(), std::nullopt);
}

// test_imap_handle_iterable_exception: an exception raised by the input iterable is raised by
// next() as itself, after every result of the items read before it (chunksize 1, 2 and 4).
TYPED_TEST(CpythonPool, test_imap_handle_iterable_exception) {
  TypeParam workers(4);
  {
    auto stream = workers.imap(sqr, SayWhenGenerator(1, 0), 1);
    expect_squares_then_say_when(stream, 0);
  }
  {
    auto stream = workers.imap(sqr, SayWhenGenerator(1, 0), 1);  // again: reentrant
    expect_squares_then_say_when(stream, 0);
  }
  {
    auto stream = workers.imap(sqr, SayWhenGenerator(10, 3), 1);
    expect_squares_then_say_when(stream, 3);
  }
  {
    // The chunk [6, 8) holding the failing item yields nothing.
    auto stream = workers.imap(sqr, SayWhenGenerator(20, 7), 2);
    expect_squares_then_say_when(stream, 6);
  }
  {
    auto stream = workers.imap(sqr, SayWhenGenerator(20, 7), 4);
    expect_squares_then_say_when(stream, 4);
  }
  EXPECT_EQ(workers.imap(sqr, iota_vector(5)).collect(), squares(5));
}

// test_imap_unordered: imap_unordered yields every f(x) once, in any order (ours: as (index,
// value) pairs), also with chunksize 100.
TYPED_TEST(CpythonPool, test_imap_unordered) {
  TypeParam workers(4);
  for (auto [n, chunksize] : {std::pair{10, 1}, std::pair{1000, 100}}) {
    const auto pairs = workers.imap_unordered(sqr, iota_vector(n), chunksize).collect();
    std::vector<int> values;
    std::set<std::size_t> indices;
    for (const auto& [index, value] : pairs) {
      EXPECT_EQ(value, static_cast<int>(index * index));
      indices.insert(index);
      values.push_back(value);
    }
    std::sort(values.begin(), values.end());
    EXPECT_EQ(values, squares(n));
    EXPECT_EQ(indices.size(), static_cast<std::size_t>(n));
  }
}

// test_imap_unordered_handle_iterable_exception: an exception raised by the input iterable is
// raised by next() as itself, at some point; what came before it are results of earlier items.
TYPED_TEST(CpythonPool, test_imap_unordered_handle_iterable_exception) {
  TypeParam workers(4);
  {
    auto stream = workers.imap_unordered(sqr, SayWhenGenerator(1, 0), 1);
    EXPECT_THROW(stream.next(), SayWhenError);
  }
  {
    auto stream = workers.imap_unordered(sqr, SayWhenGenerator(1, 0), 1);  // again: reentrant
    EXPECT_THROW(stream.next(), SayWhenError);
  }
  {
    auto stream = workers.imap_unordered(sqr, SayWhenGenerator(10, 3), 1);
    expect_unordered_squares_then_say_when(stream, 10, 3);
  }
  {
    auto stream = workers.imap_unordered(sqr, SayWhenGenerator(20, 7), 2);
    expect_unordered_squares_then_say_when(stream, 20, 7);
  }
}

// test_make_pool: Pool(-1) and Pool(0) raise (ValueError; ours std::invalid_argument); Pool(3)
// has 3 workers.
TYPED_TEST(CpythonPool, test_make_pool) {
  EXPECT_THROW((void)TypeParam(-1), std::invalid_argument);
  EXPECT_THROW((void)TypeParam(0), std::invalid_argument);
  TypeParam workers(3);
  EXPECT_EQ(workers.size(), 3);
  if constexpr (kKillsWorkers<TypeParam>) {
    EXPECT_EQ(pool::testing::child_processes().size(), 3u);
  }
  workers.close();
  workers.join();
  if constexpr (kKillsWorkers<TypeParam>) {
    EXPECT_EQ(pool::testing::child_processes(), std::vector<pid_t>{});
  }
}

// test_terminate: terminate() + join() return promptly while 10,000 "forever" tasks are queued
// and some run (threads: 1 s tasks, as in Python); ours also checks the running tasks were
// killed and the dropped result raises PoolNotRunning.
TYPED_TEST(CpythonPool, test_terminate) {
  constexpr int kSleepMs = kKillsWorkers<TypeParam> ? 60'000 : 1'000;
  TypeParam workers(3);
  auto result = workers.map_async(sleep_ms, std::vector<int>(10'000, kSleepMs), 1);
  ASSERT_TRUE(eventually([] { return shared().started.load() >= 1; })) << "no task started";
  workers.terminate();
  workers.join();
  EXPECT_TRUE(result.ready());
  EXPECT_THROW(result.get(), pool::PoolNotRunning);
  if constexpr (kKillsWorkers<TypeParam>) {
    EXPECT_LE(shared().started.load(), 3);
    EXPECT_EQ(shared().finished.load(), 0);
    EXPECT_EQ(pool::testing::child_processes(), std::vector<pid_t>{});
  }
}

// test_empty_iterable: map, imap, imap_unordered and map_async over [] give [].
TYPED_TEST(CpythonPool, test_empty_iterable) {
  TypeParam workers(1);
  const std::vector<int> empty;
  EXPECT_EQ(workers.map(sqr, empty), std::vector<int>{});
  EXPECT_EQ(workers.imap(sqr, empty).collect(), std::vector<int>{});
  EXPECT_TRUE(workers.imap_unordered(sqr, empty).collect().empty());
  EXPECT_EQ(workers.map_async(sqr, empty).get(), std::vector<int>{});
  workers.close();
  workers.join();
}

// test_context: results come back inside `with Pool() as p`, whose exit terminates the pool;
// map_async afterwards raises (ValueError; ours PoolNotRunning). C++ has no `with`: terminate().
TYPED_TEST(CpythonPool, test_context) {
  TypeParam workers(2);
  auto result = workers.map_async(sqr, iota_vector(10));
  EXPECT_EQ(result.get(), squares(10));
  workers.terminate();
  workers.join();
  EXPECT_THROW(workers.map_async(sqr, iota_vector(10)), pool::PoolNotRunning);
}

// test_traceback: a task's exception reaches the caller with its type and message (ours: a
// TaskError naming them; C++ has no remote traceback), while an exception of the input iterable
// is raised as itself, not as a remote one.
TYPED_TEST(CpythonPool, test_traceback) {
  {
    TypeParam workers(1);
    try {
      workers.apply(raise_123);
      ADD_FAILURE() << "expected a TaskError";
    } catch (const pool::TaskError& error) {
      EXPECT_EQ(error.type_name(), "std::runtime_error");
      EXPECT_EQ(error.message(), "123");
      EXPECT_EQ(error.task_index(), 0);
      EXPECT_EQ(std::string(error.what()), "task 0 raised std::runtime_error: 123");
    }
    workers.terminate();
    workers.join();
  }
  {
    TypeParam workers(1);
    try {
      workers.map(sqr, sized_say_when(1, 0), 1);
      ADD_FAILURE() << "expected SayWhenError";
    } catch (const pool::TaskError& error) {
      ADD_FAILURE() << "the input's exception came back as a task failure: " << error.what();
    } catch (const SayWhenError&) {
    }
    workers.terminate();
    workers.join();
  }
}

// test_wrapped_exception: a task raising RuntimeError('foo') makes apply raise RuntimeError
// (ours: TaskError, which is a std::runtime_error, carrying the original type and message).
TYPED_TEST(CpythonPool, test_wrapped_exception) {
  TypeParam workers(1);
  EXPECT_THROW(workers.apply(raise_foo), std::runtime_error);
  try {
    workers.apply(raise_foo);
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.type_name(), "std::runtime_error");
    EXPECT_EQ(error.message(), "foo");
  }
  workers.close();
  workers.join();
}

// test_map_no_failfast: when map's tasks raise (a 1 MiB ValueError message), close() + join()
// neither deadlock nor skip the tasks already running (Python checks elapsed time; ours counts
// the tasks that finished).
TYPED_TEST(CpythonPool, test_map_no_failfast) {
  TypeParam workers(2);
  try {
    workers.map(raise_large_valueerror, std::vector<int>{0, 300});
    ADD_FAILURE() << "expected a TaskError";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 0);
    EXPECT_EQ(error.type_name(), "std::invalid_argument");
    EXPECT_EQ(error.message(), std::string(std::size_t{1} << 20, 'x'));
  }
  workers.close();
  workers.join();
  EXPECT_EQ(shared().started.load(), 2);
  EXPECT_EQ(shared().finished.load(), 2);
}

// test_enter: a terminated pool refuses to be used again (Python: entering `with` raises
// ValueError; ours: every call raises PoolNotRunning, and join() before close() is a logic_error).
TYPED_TEST(CpythonPool, test_enter) {
  {
    TypeParam workers(1);
    EXPECT_THROW(workers.join(), std::logic_error);  // Python: ValueError, "Pool is still running"
    workers.terminate();
    EXPECT_THROW(workers.map(sqr, iota_vector(3)), pool::PoolNotRunning);
    EXPECT_THROW(workers.map_async(sqr, iota_vector(3)), pool::PoolNotRunning);
    EXPECT_THROW(workers.starmap(mul, zipped(3)), pool::PoolNotRunning);
    EXPECT_THROW(workers.apply(sqr, 3), pool::PoolNotRunning);
    EXPECT_THROW(workers.apply_async(sqr, 3), pool::PoolNotRunning);
    EXPECT_THROW(workers.imap(sqr, iota_vector(3)), pool::PoolNotRunning);
    EXPECT_THROW(workers.imap_unordered(sqr, iota_vector(3)), pool::PoolNotRunning);
    workers.join();
  }
  {
    TypeParam workers(1);
    workers.close();
    EXPECT_THROW(workers.map(sqr, iota_vector(3)), pool::PoolNotRunning);
    EXPECT_THROW(workers.apply_async(sqr, 3), pool::PoolNotRunning);
    EXPECT_THROW(workers.imap(sqr, iota_vector(3)), pool::PoolNotRunning);
    workers.join();
  }
}

// ---------------------------------------------------------------------------------------------
// _TestPoolWorkerErrors

// test_async_error_callback: apply_async of a raising function calls error_callback with the
// exception (KeyError; ours a TaskError naming std::out_of_range) and get() raises it.
TYPED_TEST(CpythonPool, test_async_error_callback) {
  TypeParam workers(2);
  std::exception_ptr seen;
  int calls = 0;
  auto result =
      workers.apply_async(raise_key_error, pool::args(), {}, [&](std::exception_ptr error) {
        seen = error;
        ++calls;
      });
  EXPECT_THROW(result.get(), pool::TaskError);
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(seen);
  try {
    std::rethrow_exception(seen);
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.type_name(), "std::out_of_range");
    EXPECT_EQ(error.message(), "key");
  } catch (...) {
    ADD_FAILURE() << "error_callback got something other than a TaskError";
  }
  workers.close();
  workers.join();
}

// test_unpickleable_result: a result that cannot be serialized fails its call (Python:
// MaybeEncodingError; ours: TaskError naming the serializer's exception) through error_callback,
// 20 times over, without losing worker processes.
TEST_F(CpythonProcessPool, test_unpickleable_result) {
  pool::ProcessPool workers(2);
  for (int iteration = 0; iteration < 20; ++iteration) {
    std::exception_ptr seen;
    auto result = workers.apply_async(make_unpicklable, pool::args(iteration), {},
                                      [&seen](std::exception_ptr error) { seen = error; });
    try {
      result.get();
      ADD_FAILURE() << "iteration " << iteration << ": an unserializable result came back";
    } catch (const pool::TaskError& error) {
      EXPECT_EQ(error.type_name(), "std::runtime_error");
      EXPECT_EQ(error.message(), "cannot pickle");
    } catch (const std::exception& error) {
      ADD_FAILURE() << "iteration " << iteration << ": not a TaskError: " << error.what();
    }
    EXPECT_TRUE(seen) << "iteration " << iteration << ": no error_callback";
  }
  EXPECT_EQ(pool::testing::child_processes().size(), 2u);
  EXPECT_EQ(workers.map(sqr, iota_vector(10)), squares(10));
}

// test_map_unplicklable: map over arguments that cannot be serialized raises the serializer's
// RuntimeError instead of hanging (processes only, as in Python), and the pool stays usable.
TEST_F(CpythonProcessPool, test_map_unplicklable) {
  pool::ProcessPool workers(2);
  try {
    workers.map(payload_size, std::vector<Unpicklable>(10));
    ADD_FAILURE() << "unserializable arguments were sent";
  } catch (const pool::TaskError& error) {
    ADD_FAILURE() << "the parent's serialization failure came back as a task failure: "
                  << error.what();
  } catch (const std::runtime_error& error) {
    EXPECT_STREQ(error.what(), "cannot pickle");
  }
  EXPECT_EQ(workers.map(sqr, iota_vector(10)), squares(10));
}

// ---------------------------------------------------------------------------------------------
// _TestPoolWorkerLifetime

// test_pool_worker_lifetime: with maxtasksperchild=10, 100 apply_async calls on 3 workers give
// the right answers and the workers are replaced (ours: no worker runs more than 10 of them, so
// at least 10 processes ran them, and other pids than the first 3).
TEST_F(CpythonProcessPool, test_pool_worker_lifetime) {
  pool::ProcessPool workers(3, pool_options(10));
  EXPECT_EQ(workers.size(), 3);
  const std::vector<pid_t> original = pool::testing::child_processes();
  ASSERT_EQ(original.size(), 3u);
  std::vector<pool::AsyncResult<PidSquare>> results;
  for (int i = 0; i < 100; ++i) results.push_back(workers.apply_async(pid_and_sqr, i));
  std::map<int, int> tasks_per_pid;
  for (int j = 0; j < 100; ++j) {
    const PidSquare answer = results[static_cast<std::size_t>(j)].get();
    EXPECT_EQ(answer.square, j * j);
    ++tasks_per_pid[answer.pid];
  }
  EXPECT_GE(tasks_per_pid.size(), 10u);
  for (const auto& [pid, tasks] : tasks_per_pid) EXPECT_LE(tasks, 10) << "pid " << pid;
  const auto replacements =
      std::count_if(tasks_per_pid.begin(), tasks_per_pid.end(), [&original](const auto& entry) {
        return std::find(original.begin(), original.end(), entry.first) == original.end();
      });
  EXPECT_GE(replacements, 7);
  workers.close();
  workers.join();
}

// test_pool_worker_lifetime_early_close: closing a pool with maxtasksperchild=1 before its 6
// slow tasks finished does not make join() hang, and every result is right afterwards.
TEST_F(CpythonProcessPool, test_pool_worker_lifetime_early_close) {
  pool::ProcessPool workers(3, pool_options(1));
  std::vector<pool::AsyncResult<PidSquare>> results;
  for (int i = 0; i < 6; ++i) results.push_back(workers.apply_async(slow_pid_and_sqr, i));
  workers.close();
  workers.join();
  std::set<int> pids;
  for (int j = 0; j < 6; ++j) {
    auto& result = results[static_cast<std::size_t>(j)];
    ASSERT_TRUE(result.ready()) << "result " << j << " not ready after join()";
    const PidSquare answer = result.get();
    EXPECT_EQ(answer.square, j * j);
    pids.insert(answer.pid);
  }
  EXPECT_EQ(pids.size(), 6u) << "a worker ran more than one task";
}

// test_pool_maxtasksperchild_invalid: Python rejects 0, -1, 0.5 and "12" with ValueError; ours is
// an unsigned count (the others do not compile) in which 0 means "never replace": checked here.
TEST_F(CpythonProcessPool, test_pool_maxtasksperchild_invalid) {
  static_assert(
      std::is_same_v<decltype(pool::ProcessPoolOptions::maxtasksperchild), std::uint64_t>);
  pool::ProcessPool workers(1, pool_options(0));
  const std::vector<int> pids = workers.map(worker_pid, iota_vector(50), 1);
  EXPECT_EQ(std::set<int>(pids.begin(), pids.end()).size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// TestInitializers

// test_pool_initializer: Pool(1, initializer, initargs) runs the initializer once, in its worker
// (Python's TypeError for a non-callable is a compile error here); ours also checks that it runs
// in every worker, not in the parent, and sets up per-process state the tasks see.
TEST_F(CpythonProcessPool, test_pool_initializer) {
  static_assert(!std::is_convertible_v<int, decltype(pool::ProcessPoolOptions::initializer)>);
  {
    pool::ProcessPool workers(1, pool_options(0, record_initializer));
    workers.close();
    workers.join();
  }
  EXPECT_EQ(shared().initializer_runs.load(), 1);
  EXPECT_NE(shared().initializer_pids[0].load(), static_cast<int>(::getpid()));

  const int setting = 42;
  pool::ProcessPool workers(3, pool_options(0, [setting] { g_worker_setting = setting; }));
  EXPECT_EQ(workers.map(read_worker_setting, iota_vector(30), 1), std::vector<int>(30, 42));
  EXPECT_EQ(g_worker_setting, 0) << "the initializer ran in the parent";
}

// No Python test (Python runs the initializer in every new worker too): with maxtasksperchild=1
// each of 6 tasks runs in its own worker, and each of those ran the initializer first.
TEST_F(CpythonProcessPool, test_pool_initializer_with_maxtasksperchild) {
  pool::ProcessPool workers(2, pool_options(1, record_initializer));
  std::vector<int> pids;
  try {
    pids = workers.map(worker_pid, iota_vector(6), 1);
  } catch (const pool::InitializerError& error) {
    FAIL() << "no initializer failed, yet: " << error.what();
  }
  for (int pid : pids) EXPECT_TRUE(initializer_ran_in(pid)) << "pid " << pid;
  EXPECT_EQ(std::set<int>(pids.begin(), pids.end()).size(), 6u);
  EXPECT_GE(shared().initializer_runs.load(), 6);
}

// No Python test (there a raising initializer makes the pool start workers forever): ours throws
// InitializerError from the constructor, or from the call during which a replacement's
// initializer failed, and the pool then refuses work.
TEST_F(CpythonProcessPool, test_pool_initializer_raises) {
  try {
    pool::ProcessPool workers(2, pool_options(0, [] { throw std::runtime_error("no db"); }));
    ADD_FAILURE() << "the constructor returned although the initializer threw";
  } catch (const pool::InitializerError& error) {
    EXPECT_EQ(error.type_name(), "std::runtime_error");
    EXPECT_EQ(error.message(), "no db");
  }

  // The two first workers start; their replacements (maxtasksperchild = 1) cannot.
  pool::ProcessPool workers(2, pool_options(1, [] {
                              if (shared().initializer_runs++ >= 2) {
                                throw std::runtime_error("no db");
                              }
                            }));
  EXPECT_THROW(workers.map(sqr, iota_vector(4), 1), pool::InitializerError);
  EXPECT_THROW(workers.map(sqr, iota_vector(4), 1), pool::InitializerError);
}

// ---------------------------------------------------------------------------------------------
// A killed worker

// concurrent.futures' test_killed_child: a worker killed abruptly breaks the whole pool
// (BrokenProcessPool; multiprocessing.Pool would hang). Ours: only the call it ran fails, with
// WorkerDied; other calls complete, the worker is replaced and the pool stays usable.
TEST_F(CpythonProcessPool, test_killed_child) {
  pool::ProcessPool workers(2);
  OpenGateAtExit open_gate;
  auto other = workers.apply_async(gated_sqr, 7);
  ASSERT_TRUE(eventually([] { return shared().started.load() == 1; }));
  auto doomed = workers.apply_async(kill_self, 0);
  try {
    doomed.get();
    ADD_FAILURE() << "the killed task returned";
  } catch (const pool::WorkerDied& died) {
    EXPECT_EQ(died.signal(), SIGKILL);
    EXPECT_EQ(died.task_index(), 0);
  }
  shared().gate = 1;
  EXPECT_EQ(other.get(), 49);

  try {
    workers.map(kill_self, iota_vector(4), 1);
    ADD_FAILURE() << "map returned although its tasks kill their workers";
  } catch (const pool::WorkerDied& died) {
    EXPECT_EQ(died.signal(), SIGKILL);
  }
  EXPECT_EQ(workers.size(), 2);
  EXPECT_EQ(workers.map(sqr, iota_vector(10)), squares(10));
  EXPECT_EQ(workers.apply(sqr, 9), 81);
}

}  // namespace
