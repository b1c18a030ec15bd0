// Where a task failed: TaskError::stack_trace() names the function that threw, on every local
// pool, and WorkerDied::stack_trace() names the function where a worker process crashed. This
// binary is built with -g, as a user's debug build would be.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "pool/pool.h"
#include "tests/pool_types.h"

namespace {

[[gnu::noinline]] int throw_from_deep_inside(int x) {
  if (x == 7) throw std::runtime_error("seven");
  return x;
}

[[gnu::noinline]] int read_past_the_end(int x) {
  std::vector<int> none;
  return none.at(static_cast<std::size_t>(x));  // std::out_of_range, thrown inside libstdc++
}

template <class P>
class TaskErrorStack : public ::testing::Test {};
TYPED_TEST_SUITE(TaskErrorStack, pool::testing::AllPools, pool::testing::PoolName);

TYPED_TEST(TaskErrorStack, NamesTheFunctionThatThrew) {
  TypeParam workers(2);
  try {
    workers.map([](int x) { return throw_from_deep_inside(x); }, pool::range(0, 10));
    ADD_FAILURE() << "map returned although a task threw";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 7);
    EXPECT_NE(error.stack_trace().find("throw_from_deep_inside"), std::string::npos)
        << error.stack_trace();
    EXPECT_EQ(error.stack_trace().rfind("#0 ", 0), 0u) << error.stack_trace();
  }
}

TYPED_TEST(TaskErrorStack, NamesTheTaskFunctionWhenTheLibraryThrowsForIt) {
  TypeParam workers(2);
  try {
    workers.apply([](int x) { return read_past_the_end(x); }, 3);
    ADD_FAILURE() << "apply returned although the task threw";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.type_name(), "std::out_of_range");
    EXPECT_NE(error.stack_trace().find("read_past_the_end"), std::string::npos)
        << error.stack_trace();
  }
  EXPECT_EQ(workers.map([](int x) { return x + 1; }, pool::range(0, 3)),
            (std::vector<int>{1, 2, 3}));
}

[[gnu::noinline]] int crash_by_null_write(int x) {
  volatile int* nowhere = nullptr;
  *nowhere = x;
  return x;
}

[[gnu::noinline]] int abort_from_here(int x) {
  if (x >= 0) std::abort();
  return x;
}

[[gnu::noinline]] int recurse_forever(int depth) {
  if (depth < 0) return 0;  // never: the stack runs out first
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  return recurse_forever(depth + 1) + frame[0];
}

// Runs `task` on item 0 in a ProcessPool(1); returns the WorkerDied it gave.
template <class Task>
pool::WorkerDied crash_of(Task task) {
  pool::ProcessPool workers(1);
  try {
    workers.map(task, pool::range(0, 1));
  } catch (const pool::WorkerDied& died) {
    EXPECT_EQ(workers.map([](int x) { return x * 3; }, pool::range(0, 2)), (std::vector<int>{0, 3}))
        << "the pool goes on";
    return died;
  }
  ADD_FAILURE() << "the worker did not die";
  return pool::WorkerDied(-1, 0, 0);
}

TEST(WorkerDiedStack, ASegfaultNamesTheFunctionThatFaulted) {
  const pool::WorkerDied died = crash_of([](int x) { return crash_by_null_write(x); });
  EXPECT_EQ(died.signal(), SIGSEGV);
  EXPECT_NE(died.stack_trace().find("crash_by_null_write"), std::string::npos)
      << died.stack_trace();
}

TEST(WorkerDiedStack, AnAbortNamesTheFunctionThatAborted) {
  const pool::WorkerDied died = crash_of([](int x) { return abort_from_here(x); });
  EXPECT_EQ(died.signal(), SIGABRT);
  EXPECT_NE(died.stack_trace().find("abort_from_here"), std::string::npos) << died.stack_trace();
}

TEST(WorkerDiedStack, AStackOverflowIsCaughtOnItsOwnStack) {
  const pool::WorkerDied died = crash_of([](int x) { return recurse_forever(x); });
  EXPECT_EQ(died.signal(), SIGSEGV);
  EXPECT_NE(died.stack_trace().find("recurse_forever"), std::string::npos) << died.stack_trace();
}

TEST(WorkerDiedStack, AWorkerKilledFromOutsideHasNoStack) {
  const pool::WorkerDied died = crash_of([](int x) {
    std::raise(SIGKILL);
    return x;
  });
  EXPECT_EQ(died.signal(), SIGKILL);
  EXPECT_EQ(died.stack_trace(), "");
}

}  // namespace
