// ProcessPool's start methods (pool/start_method.h): which one an unset ProcessPoolOptions::start
// picks, why fork is refused once threads run, and what spawned and forkserver workers do that a
// fork cannot (run tasks that take a lock a thread of the caller holds) and cannot (run code the
// caller loaded with dlopen). The contract every pool keeps runs on spawn and forkserver
// in start_method_contract_test.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pool/pool.h"
#include "tests/leak_check.h"

namespace pool::testing {
namespace {

using std::chrono_literals::operator""ms;
using std::chrono_literals::operator""s;

class StartMethods : public NoLeftoversTest, public ::testing::WithParamInterface<Start> {};

std::string start_name(const ::testing::TestParamInfo<Start>& info) {
  return std::string(to_string(info.param));
}

ProcessPoolOptions started_by(Start start) {
  ProcessPoolOptions options;
  options.start = start;
  return options;
}

// A lock that a thread of the test holds while pools are made and used, and that tasks take.
std::mutex g_held_lock;

long square_under_the_lock(long x) {
  std::lock_guard<std::mutex> lock(g_held_lock);
  return x * x;
}

// Holds g_held_lock on a thread of its own until destroyed.
class ThreadHoldingTheLock {
 public:
  ThreadHoldingTheLock()
      : thread_([this] {
          std::unique_lock<std::mutex> held(g_held_lock);
          std::unique_lock<std::mutex> lock(mutex_);
          holding_ = true;
          changed_.notify_all();
          changed_.wait(lock, [this] { return release_; });
        }) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return holding_; });
  }
  ~ThreadHoldingTheLock() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      release_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool holding_ = false;
  bool release_ = false;
  std::thread thread_;
};

const std::vector<long> kSquares{0, 1, 4, 9, 16, 25, 36, 49};

TEST(StartMethod, EachMethodIsNamedAsInPythonAndReadBack) {
  for (const Start start : {Start::fork, Start::spawn, Start::forkserver}) {
    EXPECT_EQ(start_named(to_string(start)), start);
  }
  EXPECT_EQ(to_string(Start::forkserver), "forkserver");
  EXPECT_EQ(start_named("vfork"), std::nullopt);
}

TEST(StartMethod, UnsetIsForkWhileTheCallerRunsOneThread) {
  ProcessPool workers(2);
  EXPECT_EQ(workers.start_method(), Start::fork);
  EXPECT_EQ(workers.map(square_under_the_lock, pool::range(0L, 8L)), kSquares);
}

TEST(StartMethod, UnsetIsTheForkserverOnceAThreadRunsAndTasksTakeTheLockItHolds) {
  ThreadHoldingTheLock holder;
  ProcessPool workers(2);
  EXPECT_EQ(workers.start_method(), Start::forkserver);
  EXPECT_EQ(workers.map(square_under_the_lock, pool::range(0L, 8L)), kSquares);
}

TEST(StartMethod, AnExplicitForkIsRefusedWhileAThreadRuns) {
  ThreadHoldingTheLock holder;
  try {
    ProcessPool workers(2, started_by(Start::fork));
    ADD_FAILURE() << "a fork with a thread holding a lock was allowed";
  } catch (const std::logic_error& error) {
    EXPECT_NE(std::string(error.what()).find("Start::spawn"), std::string::npos) << error.what();
  }
}

TEST(StartMethod, AForkAllowedDespiteThreadsDeadlocksOnTheLockAThreadHeld) {
  ThreadHoldingTheLock holder;
  ProcessPoolOptions options = started_by(Start::fork);
  options.allow_fork_with_threads = true;
  options.task_timeout = 1s;  // the deadlock shows as a timeout, not a hang
  ProcessPool workers(1, options);
  EXPECT_THROW(workers.map(square_under_the_lock, pool::range(0L, 2L)), TaskTimeout)
      << "the fork copied g_held_lock locked, with no thread to unlock it";
}

TEST_P(StartMethods, WorkersThatAreNotForksTakeTheLockAThreadOfTheCallerHolds) {
  ThreadHoldingTheLock holder;
  ProcessPool workers(2, started_by(GetParam()));
  EXPECT_EQ(workers.start_method(), GetParam());
  EXPECT_EQ(workers.map(square_under_the_lock, pool::range(0L, 8L)), kSquares);
}

// The plugin's square, loaded with dlopen now (and for good: a fork of the test may map it).
long (*plugin_square())(long) {
  static void* const library = ::dlopen("tests/libstart_method_plugin.so", RTLD_NOW);
  if (library == nullptr) return nullptr;
  return reinterpret_cast<long (*)(long)>(::dlsym(library, "start_method_plugin_square"));
}

TEST(StartMethod, AForkRunsATaskFromALibraryLoadedWithDlopen) {
  auto* square = plugin_square();
  ASSERT_NE(square, nullptr) << ::dlerror();
  ProcessPool workers(2, started_by(Start::fork));
  EXPECT_EQ(workers.map(square, pool::range(0L, 8L)), kSquares);
}

TEST_P(StartMethods, ATaskInALibraryLoadedWithDlopenFailsTheCallNamingTheLibrary) {
  ProcessPool workers(2, started_by(GetParam()));
  auto* square = plugin_square();
  ASSERT_NE(square, nullptr) << ::dlerror();
  try {
    workers.map(square, pool::range(0L, 8L));
    ADD_FAILURE() << "a worker ran code it never loaded";
  } catch (const TaskError& error) {
    EXPECT_EQ(error.type_name(), "std::logic_error");
    EXPECT_NE(error.message().find("libstart_method_plugin.so"), std::string::npos)
        << error.message();
    EXPECT_NE(error.message().find("long (*)(long)"), std::string::npos) << error.message();
    EXPECT_NE(error.message().find("not loaded"), std::string::npos) << error.message();
  }
  EXPECT_EQ(workers.map(square_under_the_lock, pool::range(0L, 8L)), kSquares)
      << "the pool goes on";
  // A new execution of the program loads what the program links, not what it loaded later.
  ProcessPool later(1, started_by(GetParam()));
  EXPECT_THROW(later.map(square, pool::range(0L, 8L)), TaskError);
}

[[gnu::noinline]] int crash_in_a_spawned_worker(int x) {
  if (x == 3) ::raise(SIGSEGV);
  return x;
}

TEST_P(StartMethods, ACrashIsReportedWithItsStackAndTheWorkerIsReplacedTheSameWay) {
  ProcessPool workers(2, started_by(GetParam()));
  try {
    workers.map(crash_in_a_spawned_worker, pool::range(0, 8), 1);
    ADD_FAILURE() << "the crash went unnoticed";
  } catch (const WorkerDied& error) {
    EXPECT_EQ(error.signal(), SIGSEGV);
    EXPECT_EQ(error.task_index(), 3);
    EXPECT_NE(error.stack_trace().find("crash_in_a_spawned_worker"), std::string::npos)
        << "the worker's addresses were translated to the parent's: " << error.stack_trace();
  }
  EXPECT_EQ(workers.size(), 2);
  EXPECT_EQ(workers.map(square_under_the_lock, pool::range(0L, 8L)), kSquares);
}

void sleep_forever(int) { std::this_thread::sleep_for(std::chrono::hours(1)); }

TEST_P(StartMethods, TaskTimeoutAndCancelKillTheWorkerAndThePoolGoesOn) {
  ProcessPoolOptions options = started_by(GetParam());
  options.task_timeout = 300ms;
  ProcessPool workers(2, options);
  EXPECT_THROW(workers.apply(sleep_forever, 1), TaskTimeout);
  EXPECT_EQ(workers.map(square_under_the_lock, pool::range(0L, 8L)), kSquares);
  AsyncResult<void> running = workers.apply_async(sleep_forever, 1);
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(running.cancel(kill_running));
  EXPECT_EQ(workers.map(square_under_the_lock, pool::range(0L, 8L)), kSquares);
}

int own_pid(int) { return static_cast<int>(::getpid()); }

TEST_P(StartMethods, MaxtasksperchildReplacesEachWorkerByTheSameMethod) {
  ProcessPoolOptions options = started_by(GetParam());
  options.maxtasksperchild = 1;
  ProcessPool workers(2, options);
  const std::vector<int> pids = workers.map(own_pid, pool::range(0, 6), 1);
  EXPECT_EQ(std::set<int>(pids.begin(), pids.end()).size(), 6u) << "one worker per chunk";
  for (const int pid : pids) EXPECT_NE(pid, static_cast<int>(::getpid()));
}

TEST_P(StartMethods, ChunksLostWithAKilledWorkerAreRetriedOnAReplacement) {
  ProcessPoolOptions options = started_by(GetParam());
  options.retries = 1;
  ProcessPool workers(1, options);
  SharedArray<int> deaths(1);  // shared with workers that are not forks too
  const auto dies_once = [deaths = deaths.span()](int x) {
    if (x == 2 && std::atomic_ref<int>(deaths[0]).fetch_add(1) == 0) ::raise(SIGKILL);
    return x * 10;
  };
  EXPECT_EQ(workers.map(dies_once, pool::range(0, 3), 1), (std::vector<int>{0, 10, 20}))
      << "the retry ran in a new worker, started by the pool's method";
  EXPECT_EQ(deaths[0], 2);
}

int g_set_by_the_initializer = 0;
void set_the_global() { g_set_by_the_initializer = 7; }
int read_the_global(int) { return g_set_by_the_initializer; }

TEST_P(StartMethods, APlainFunctionInitializerRunsInEveryWorker) {
  ProcessPoolOptions options = started_by(GetParam());
  options.initializer = set_the_global;
  ProcessPool workers(2, options);
  EXPECT_EQ(workers.map(read_the_global, pool::range(0, 20), 1), std::vector<int>(20, 7));
  EXPECT_EQ(g_set_by_the_initializer, 0);
}

TEST_P(StartMethods, AnInitializerThatIsNotAPlainFunctionIsRejectedNamingWhy) {
  ProcessPoolOptions options = started_by(GetParam());
  const int value = 7;
  options.initializer = [value] { g_set_by_the_initializer = value; };
  try {
    ProcessPool workers(2, options);
    ADD_FAILURE() << "a capturing lambda was taken as an initializer";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("plain function"), std::string::npos) << error.what();
  }
}

TEST_P(StartMethods, WorkersSeeTheProgramsGlobalsAsBeforeMainNotTheCallers) {
  g_set_by_the_initializer = 5;
  ProcessPool workers(2, started_by(GetParam()));
  EXPECT_EQ(workers.map(read_the_global, pool::range(0, 4)), std::vector<int>(4, 0));
  g_set_by_the_initializer = 0;
}

TEST_P(StartMethods, TracedPoolsRecordEveryWorkersTasks) {
  auto trace = std::make_shared<Trace>();
  {
    ProcessPoolOptions options = started_by(GetParam());
    options.trace = trace;
    ProcessPool workers(2, options);
    EXPECT_EQ(workers.map(square_under_the_lock, pool::range(0L, 8L), 1), kSquares);
  }
  std::size_t runs = 0;
  for (const Span& span : trace->spans()) runs += span.kind == SpanKind::kRun ? 1 : 0;
  EXPECT_EQ(runs, 8u);
}

INSTANTIATE_TEST_SUITE_P(NotForks, StartMethods, ::testing::Values(Start::spawn, Start::forkserver),
                         start_name);

// The state letter in /proc/PID/stat ('Z': a zombie); '\0' when there is no such process.
char process_state(const std::string& stat_path) {
  std::ifstream file(stat_path);
  std::string stat;
  if (!std::getline(file, stat)) return '\0';
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : '\0';
}

TEST(Forkserver, AKilledForkserverIsReapedAndStartedAgainForTheNextPool) {
  start_forkserver();
  const pid_t server = forkserver_process();
  ASSERT_GT(server, 0);
  ::kill(server, SIGKILL);
  // Dead (a zombie, not yet reaped) before the next pool looks for it.
  const std::string stat = "/proc/" + std::to_string(server) + "/stat";
  for (int i = 0; i < 500 && process_state(stat) != 'Z'; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(process_state(stat), 'Z');
  ProcessPool workers(2, started_by(Start::forkserver));
  EXPECT_EQ(workers.map(square_under_the_lock, pool::range(0L, 8L)), kSquares);
  EXPECT_NE(forkserver_process(), server);
  EXPECT_EQ(process_state(stat), '\0') << "the dead server was reaped, not left a zombie";
}

}  // namespace
}  // namespace pool::testing
