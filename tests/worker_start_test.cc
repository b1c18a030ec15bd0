// A ProcessPool whose workers cannot be started or replaced (fork refused, other threads running,
// a start-up that never finishes) and a pool called from a thread that does not own it: each ends
// in a clear error, never a hang, and size() tells how many workers run.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pool/pool.h"
#include "tests/child_process.h"
#include "tests/leak_check.h"

namespace {

using pool::testing::ChildOutcome;
using pool::testing::kCannotSetUp;
using pool::testing::run_in_child;

// RLIMIT_NPROC binds only users without CAP_SYS_RESOURCE: as root, become an unprivileged user.
std::string become_unprivileged() {
  if (::geteuid() != 0) return "";
  if (::setgid(65534) != 0 || ::setuid(65534) != 0) return "cannot switch to uid 65534";
  return "";
}

// From now on this user may not start another process (it has at least this one).
bool refuse_forks() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NPROC, &limit);
  limit.rlim_cur = 1;
  return ::setrlimit(RLIMIT_NPROC, &limit) == 0;
}

void allow_forks() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NPROC, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NPROC, &limit);
}

pid_t a_worker_pid(pool::ProcessPool& workers) {
  return workers.apply([] { return static_cast<int>(::getpid()); });
}

// Until `pid` is a zombie or gone (at most 10 s).
void wait_until_dead(pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return;
    const std::size_t close = line.rfind(')');
    if (close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z') return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Runs body in a child process with a pool of `size` workers, one of them killed, whose user may
// start no more processes: every replacement fork fails (EAGAIN).
ChildOutcome with_forks_refused(int size,
                                const std::function<int(pool::ProcessPool&, std::ostream&)>& body) {
  return run_in_child(
      [&](std::ostream& report) {
        if (std::string why = become_unprivileged(); !why.empty()) {
          report << why;
          return kCannotSetUp;
        }
        pool::ProcessPool workers(size);
        if (!refuse_forks()) return kCannotSetUp;
        const pid_t victim = a_worker_pid(workers);
        ::kill(victim, SIGKILL);
        // Dead (a zombie the pool has yet to reap) before the body's first call, so that the
        // pool notices the death there and not, by chance, after it.
        wait_until_dead(victim);
        return body(workers, report);
      },
      std::chrono::seconds(60));
}

long sum_of_squares(pool::ProcessPool& workers, int n) {
  const std::vector<long> squares =
      workers.map([](long x) { return x * x; }, pool::range(0L, static_cast<long>(n)), 1);
  return std::accumulate(squares.begin(), squares.end(), 0L);
}

constexpr long kSumOfSquares100 = 328350;  // 0^2 + ... + 99^2

using WorkerStart = pool::testing::NoLeftoversTest;

TEST_F(WorkerStart, AReplacementThatCannotBeForkedLeavesThePoolRunningOnTheOthers) {
  const ChildOutcome outcome =
      with_forks_refused(2, [](pool::ProcessPool& workers, std::ostream& report) {
        report << "sum " << sum_of_squares(workers, 100) << ", size " << workers.size();
        return 0;
      });
  if (outcome.exited_with(kCannotSetUp)) GTEST_SKIP() << outcome.report;
  EXPECT_TRUE(outcome.exited_with(0)) << outcome.describe();
  EXPECT_EQ(outcome.report, "sum " + std::to_string(kSumOfSquares100) + ", size 1");
}

TEST_F(WorkerStart, AReplacementIsTriedAgainUntilForkSucceeds) {
  const ChildOutcome outcome =
      with_forks_refused(1, [](pool::ProcessPool& workers, std::ostream& report) {
        auto pending = workers.map_async([](long x) { return x * x; }, pool::range(0L, 100L));
        // The pool has no worker now; it tries again with a back-off while the call waits.
        report << "ready at once: " << pending.wait(std::chrono::milliseconds(200));
        allow_forks();
        const std::vector<long> squares = pending.get();
        report << ", sum " << std::accumulate(squares.begin(), squares.end(), 0L) << ", size "
               << workers.size();
        return 0;
      });
  if (outcome.exited_with(kCannotSetUp)) GTEST_SKIP() << outcome.report;
  EXPECT_TRUE(outcome.exited_with(0)) << outcome.describe();
  EXPECT_EQ(outcome.report,
            "ready at once: 0, sum " + std::to_string(kSumOfSquares100) + ", size 1");
}

TEST_F(WorkerStart, WithNoWorkerLeftPendingAndNewCallsFailWithWorkerStartError) {
  const ChildOutcome outcome =
      with_forks_refused(1, [](pool::ProcessPool& workers, std::ostream& report) {
        auto pending = workers.map_async([](long x) { return x * x; }, pool::range(0L, 100L));
        try {
          pending.get();
          report << "pending call succeeded";
        } catch (const pool::WorkerStartError& error) {
          report << "pending: WorkerStartError after " << error.tries() << " tries ("
                 << (error.cause().find("fork") != std::string::npos ? "names fork" : error.cause())
                 << ")";
        }
        try {
          sum_of_squares(workers, 10);
          report << "; new call succeeded";
        } catch (const pool::WorkerStartError& error) {
          report << "; new: WorkerStartError";
        }
        report << "; size " << workers.size();
        return 0;  // the destructor must not wait for a worker that cannot exist
      });
  if (outcome.exited_with(kCannotSetUp)) GTEST_SKIP() << outcome.report;
  EXPECT_TRUE(outcome.exited_with(0)) << outcome.describe();
  EXPECT_EQ(outcome.report,
            "pending: WorkerStartError after 8 tries (names fork); new: WorkerStartError; size 0");
}

// A lock some library's thread holds while a pool forks: the new worker's copy stays locked.
std::mutex library_lock;

// A library's thread that holds library_lock from construction to destruction.
class LibraryThread {
 public:
  LibraryThread()
      : thread_([this] {
          std::lock_guard<std::mutex> hold(library_lock);
          holding_ = true;
          while (!release_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }) {
    while (!holding_) std::this_thread::yield();
  }
  ~LibraryThread() {
    release_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> holding_{false};
  std::atomic<bool> release_{false};
  std::thread thread_;
};

// "WorkerStartError: <cause>" when a map on the pool fails to start a worker.
std::string outcome_of_a_map(pool::ProcessPool& workers) {
  try {
    sum_of_squares(workers, 10);
    return "map returned";
  } catch (const pool::WorkerStartError& error) {
    return "WorkerStartError: " + error.cause();
  }
}

// In a child process: a 1-worker pool (`options`, with an initializer that takes library_lock)
// whose worker is killed while a library thread holds the lock, so the next map needs a
// replacement. Reports what the map did and size().
ChildOutcome replace_while_the_lock_is_held(pool::ProcessPoolOptions options) {
  return run_in_child(
      [&options](std::ostream& report) {
        options.initializer = [] { std::lock_guard<std::mutex> hold(library_lock); };
        pool::ProcessPool workers(1, options);
        const pid_t first = a_worker_pid(workers);
        LibraryThread library;
        ::kill(first, SIGKILL);
        report << outcome_of_a_map(workers) << "; size " << workers.size();
        return 0;
      },
      std::chrono::seconds(60));
}

TEST_F(WorkerStart, NoReplacementIsForkedWhileOtherThreadsRun) {
  const ChildOutcome outcome = replace_while_the_lock_is_held({});
  EXPECT_TRUE(outcome.exited_with(0)) << outcome.describe();
  EXPECT_NE(outcome.report.find("WorkerStartError: this process now runs 2 threads"),
            std::string::npos)
      << outcome.report;
  EXPECT_NE(outcome.report.find("; size 0"), std::string::npos) << outcome.report;
}

TEST_F(WorkerStart, AWorkerThatDoesNotStartInTimeIsKilledAndReported) {
  const ChildOutcome outcome = replace_while_the_lock_is_held(
      {.allow_fork_with_threads = true, .start_timeout = std::chrono::milliseconds(500)});
  EXPECT_TRUE(outcome.exited_with(0)) << outcome.describe();
  EXPECT_NE(outcome.report.find("WorkerStartError: worker process"), std::string::npos)
      << outcome.report;
  EXPECT_NE(outcome.report.find("did not become ready within 0.5 s"), std::string::npos)
      << outcome.report;
  EXPECT_NE(outcome.report.find("; size 0"), std::string::npos) << outcome.report;
}

TEST_F(WorkerStart, AConstructorWhoseWorkerDoesNotStartInTimeThrows) {
  std::mutex held;
  std::unique_lock<std::mutex> hold(held);
  EXPECT_THROW(
      pool::ProcessPool(1, {.initializer = [&held] { std::lock_guard<std::mutex> x(held); },
                            .start_timeout = std::chrono::milliseconds(300)}),
      pool::WorkerStartError);
}

using CallerThread = pool::testing::NoLeftoversTest;

TEST_F(CallerThread, ACallFromAnotherThreadThrowsLogicErrorAndThePoolGoesOn) {
  pool::ProcessPool workers(2);
  auto pending = workers.apply_async([](int x) { return x + 1; }, 41);
  std::string map_error, get_error;
  std::thread other([&] {
    try {
      workers.map([](int x) { return x; }, pool::range(0, 4));
    } catch (const std::logic_error& error) {
      map_error = error.what();
    }
    try {
      pending.get();
    } catch (const std::logic_error& error) {
      get_error = error.what();
    }
  });
  other.join();
  EXPECT_NE(map_error.find("thread that created the pool"), std::string::npos) << map_error;
  EXPECT_NE(get_error.find("thread that created the pool"), std::string::npos) << get_error;
  EXPECT_EQ(pending.get(), 42);
  EXPECT_EQ(workers.map([](int x) { return x * 2; }, pool::range(0, 3)),
            (std::vector<int>{0, 2, 4}));
}

}  // namespace
