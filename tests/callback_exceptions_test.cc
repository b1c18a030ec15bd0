// A callback or error_callback of apply_async, map_async or starmap_async that throws, on every
// pool: the result keeps the task's own outcome (its value, or its TaskError), the callback's
// exception is reported in one line on stderr and otherwise ignored (as Python's
// concurrent.futures does with a done-callback that raises), and the pool stays usable.
#include <gtest/gtest.h>

#include <atomic>
#include <exception>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "pool/pool.h"
#include "tests/leak_check.h"
#include "tests/pool_types.h"

namespace {

// Not derived from std::exception: the stderr line names it by its type.
struct NotAnException {};

int square(int x) { return x * x; }

int multiply(int a, int b) { return a * b; }

// Throws for x == 3, so a map over 0..9 fails with task_index 3.
int fails_at_three(int x) {
  if (x == 3) throw std::invalid_argument("three");
  return x;
}

std::vector<int> squares(int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i) out.push_back(i * i);
  return out;
}

// The TaskError a result failed with; fails the test if it failed with anything else.
pool::TaskError task_error_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const pool::TaskError& task_error) {
    return task_error;
  } catch (const std::exception& other) {
    ADD_FAILURE() << "failed with something other than a TaskError: " << other.what();
  } catch (...) {
    ADD_FAILURE() << "failed with something not derived from std::exception";
  }
  return pool::TaskError(-1, "", "");
}

// The TaskError get() throws; fails the test if get() returns or throws anything else.
template <class Result>
pool::TaskError task_error_of_get(Result& result) {
  try {
    result.get();
    ADD_FAILURE() << "get() returned for a task that threw";
  } catch (...) {
    return task_error_of(std::current_exception());
  }
  return pool::TaskError(-1, "", "");
}

// Captures what the process writes to stderr (fd 2, so worker threads' writes too) from its
// construction to take(); ends the capture also when the test fails in between, as gtest allows
// only one at a time.
class StderrCapture {
 public:
  StderrCapture() { ::testing::internal::CaptureStderr(); }
  ~StderrCapture() {
    if (!taken_) take();
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  std::string take() {
    taken_ = true;
    return ::testing::internal::GetCapturedStderr();
  }

 private:
  bool taken_ = false;
};

// result.get(), or R{} after a test failure naming what get() threw instead.
template <class Result>
auto value_of_get(Result& result) -> decltype(result.get()) {
  try {
    return result.get();
  } catch (const std::exception& error) {
    ADD_FAILURE() << "get() threw for a task that succeeded: " << error.what();
  } catch (...) {
    ADD_FAILURE() << "get() threw something not derived from std::exception";
  }
  return {};
}

const char kIgnored[] = "; ignored (the result keeps the task's outcome)\n";

template <class P>
class CallbackExceptions : public pool::testing::NoLeftoversTest {};

TYPED_TEST_SUITE(CallbackExceptions, pool::testing::AllPools, pool::testing::PoolName);

TYPED_TEST(CallbackExceptions, ASuccessCallbackThatThrowsLeavesTheValueAndIsReportedOnStderr) {
  TypeParam workers(2);
  std::atomic<int> calls{0};
  StderrCapture capture;
  auto result = workers.apply_async(&square, pool::args(7), [&calls](const int&) {
    ++calls;
    throw std::runtime_error("callback broke");
  });
  const int value = value_of_get(result);
  const std::string err = capture.take();
  EXPECT_EQ(value, 49);
  EXPECT_TRUE(result.ready());
  EXPECT_TRUE(result.successful());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_NE(err.find("pool: the callback of an *_async call raised std::runtime_error: "
                     "callback broke" +
                     std::string(kIgnored)),
            std::string::npos)
      << err;
}

TYPED_TEST(CallbackExceptions, AThrowingCallbackOfMapAsyncAndStarmapAsyncLeavesTheirValues) {
  TypeParam workers(2);
  std::atomic<int> calls{0};
  auto throwing = [&calls](const std::vector<int>&) {
    ++calls;
    throw std::out_of_range("callback out of range");
  };
  std::vector<std::tuple<int, int>> pairs;
  for (int i = 0; i < 10; ++i) pairs.emplace_back(i, i);
  StderrCapture capture;
  auto mapped = workers.map_async(&square, pool::range(0, 10), 3, throwing);
  auto starred = workers.starmap_async(&multiply, pairs, 3, throwing);
  const std::vector<int> mapped_values = value_of_get(mapped);
  const std::vector<int> starred_values = value_of_get(starred);
  const std::string err = capture.take();
  EXPECT_EQ(mapped_values, squares(10));
  EXPECT_EQ(starred_values, squares(10));
  EXPECT_TRUE(mapped.successful());
  EXPECT_TRUE(starred.successful());
  EXPECT_EQ(calls.load(), 2);
  const std::string line =
      "raised std::out_of_range: callback out of range" + std::string(kIgnored);
  const auto first = err.find(line);
  ASSERT_NE(first, std::string::npos) << err;
  EXPECT_NE(err.find(line, first + 1), std::string::npos) << "one line per callback:\n" << err;
}

TYPED_TEST(CallbackExceptions, AnErrorCallbackThatThrowsLeavesTheTaskError) {
  TypeParam workers(2);
  std::atomic<int> calls{0};
  std::atomic<int> successes{0};
  StderrCapture capture;
  auto result = workers.map_async(
      &fails_at_three, pool::range(0, 10), 1,
      [&successes](const std::vector<int>&) { ++successes; },
      [&calls](std::exception_ptr) {
        ++calls;
        throw std::logic_error("error callback broke");
      });
  const pool::TaskError error = task_error_of_get(result);
  const std::string err = capture.take();
  EXPECT_EQ(error.task_index(), 3);
  EXPECT_EQ(error.type_name(), "std::invalid_argument");
  EXPECT_EQ(error.message(), "three");
  EXPECT_TRUE(result.ready());
  EXPECT_FALSE(result.successful());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(successes.load(), 0);
  EXPECT_NE(err.find("pool: the error_callback of an *_async call raised std::logic_error: "
                     "error callback broke" +
                     std::string(kIgnored)),
            std::string::npos)
      << err;
}

TYPED_TEST(CallbackExceptions, AnErrorCallbackOfApplyAsyncThatThrowsLeavesTheTaskError) {
  TypeParam workers(2);
  std::atomic<int> calls{0};
  StderrCapture capture;
  auto result = workers.apply_async(
      &fails_at_three, pool::args(3), [](const int&) {},
      [&calls](std::exception_ptr error) {
        ++calls;
        std::rethrow_exception(error);  // the easiest mistake: rethrowing what it was given
      });
  const pool::TaskError error = task_error_of_get(result);
  const std::string err = capture.take();
  EXPECT_EQ(error.task_index(), 0);
  EXPECT_EQ(error.type_name(), "std::invalid_argument");
  EXPECT_FALSE(result.successful());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_NE(err.find("pool: the error_callback of an *_async call raised pool::TaskError: "
                     "task 0 raised std::invalid_argument: three" +
                     std::string(kIgnored)),
            std::string::npos)
      << err;
}

TYPED_TEST(CallbackExceptions, AnExceptionNotDerivedFromStdExceptionIsNamedByItsType) {
  TypeParam workers(2);
  StderrCapture capture;
  auto result =
      workers.apply_async(&square, pool::args(3), [](const int&) { throw NotAnException{}; });
  const int value = value_of_get(result);
  const std::string err = capture.take();
  EXPECT_EQ(value, 9);
  EXPECT_TRUE(result.successful());
  EXPECT_NE(err.find("pool: the callback of an *_async call raised (anonymous "
                     "namespace)::NotAnException: (not derived from std::exception)" +
                     std::string(kIgnored)),
            std::string::npos)
      << err;
}

// On thread pools the callbacks run in the worker threads: more throwing callbacks than threads
// must leave every thread working.
TYPED_TEST(CallbackExceptions, ThePoolStaysUsableAfterManyThrowingCallbacks) {
  TypeParam workers(2);
  std::atomic<int> calls{0};
  std::vector<pool::AsyncResult<int>> results;
  StderrCapture capture;
  for (int i = 0; i < 8; ++i) {
    results.push_back(workers.apply_async(
        &square, pool::args(i),
        [&calls](const int&) {
          ++calls;
          throw std::runtime_error("callback broke");
        },
        [&calls](std::exception_ptr) {
          ++calls;
          throw std::runtime_error("error callback broke");
        }));
  }
  for (int i = 0; i < 8; ++i) EXPECT_EQ(value_of_get(results[i]), i * i);
  const std::string err = capture.take();
  EXPECT_EQ(calls.load(), 8);
  EXPECT_NE(err.find("callback broke"), std::string::npos) << err;
  EXPECT_EQ(workers.map(&square, pool::range(0, 100), 1), squares(100));
  EXPECT_EQ(workers.apply(&square, 5), 25);
}

}  // namespace
