#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "pool/pool.h"
#include "tests/child_process.h"
#include "tests/leak_check.h"

namespace {

using ProcessPoolLifecycle = pool::testing::NoLeftoversTest;

// Alive, as opposed to gone or a zombie waiting for init to reap it.
// Zombies ('Z') and processes being reaped ('X') are dead, though still listed.
bool process_alive(pid_t pid) {
  const char state = pool::testing::process_state(pid);
  return state != 0 && state != 'Z' && state != 'X';
}

TEST_F(ProcessPoolLifecycle, ForksTheRequestedNumberOfWorkers) {
  pool::ProcessPool workers(3);
  EXPECT_EQ(workers.size(), 3);
  EXPECT_EQ(pool::testing::child_processes().size(), 3u);
}

TEST_F(ProcessPoolLifecycle, DefaultsToTheCpusThisProcessMayUse) {
  pool::ProcessPool workers;
  EXPECT_EQ(workers.size(), pool::available_cpus());
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_EQ(pool::available_cpus(), CPU_COUNT(&set));
}

TEST_F(ProcessPoolLifecycle, ReapsEveryWorkerAndRemovesSharedMemoryOnDestruction) {
  {
    pool::ProcessPool workers(2);
    // Outgrow the initial arena and result buffers, so segments are created and handed over too.
    const auto big =
        workers.map([](long k) { return static_cast<double>(k); }, pool::range(0L, 2'000'000L));
    ASSERT_EQ(big.size(), 2'000'000u);
    const auto text =
        workers.map([](int) { return std::string(300'000, 'z'); }, pool::range(0, 20), 5);
    ASSERT_EQ(text.size(), 20u);
    EXPECT_EQ(pool::testing::child_processes().size(), 2u);
    // They are memfds: none has a name in /dev/shm.
    EXPECT_TRUE(pool::testing::shared_memory_named_by(::getpid()).empty());
  }
  EXPECT_TRUE(pool::testing::child_processes().empty());
}

TEST_F(ProcessPoolLifecycle, MovesOwnershipOfTheWorkers) {
  pool::ProcessPool first(2);
  pool::ProcessPool second = std::move(first);
  EXPECT_EQ(second.size(), 2);
  EXPECT_EQ(second.map([](int x) { return -x; }, pool::range(0, 3)), (std::vector<int>{0, -1, -2}));
  EXPECT_THROW(first.map([](int x) { return x; }, pool::range(0, 3)), std::logic_error);
}

TEST_F(ProcessPoolLifecycle, WorkersExitWhenTheParentIsKilled) {
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t parent = ::fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    // An intermediate parent that owns a pool, reports a worker's pid, then waits to be killed.
    ::close(report[0]);
    pool::ProcessPool workers(1);
    const int worker =
        workers.map([](int) { return static_cast<int>(::getpid()); }, pool::range(0, 1))[0];
    (void)!::write(report[1], &worker, sizeof(worker));
    ::pause();
    ::_exit(0);
  }
  ::close(report[1]);
  int worker = 0;
  ASSERT_EQ(::read(report[0], &worker, sizeof(worker)), static_cast<ssize_t>(sizeof(worker)));
  ::close(report[0]);
  ASSERT_TRUE(process_alive(worker));
  ::kill(parent, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(parent, &status, 0), parent);
  // The orphaned worker gets SIGKILL from the kernel (PR_SET_PDEATHSIG) and is reaped by init.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (process_alive(worker) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_FALSE(process_alive(worker)) << "worker " << worker << " outlived its parent";
}

}  // namespace
