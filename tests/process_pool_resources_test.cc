// Where a ProcessPool's shared memory comes from, tested where it used to break: a container's
// small /dev/shm, a parent killed at any moment, a memory limit smaller than a call's results.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pool/pool.h"
#include "tests/child_process.h"
#include "tests/leak_check.h"

namespace {

using pool::testing::ChildOutcome;
using pool::testing::kCannotSetUp;
using pool::testing::run_in_child;

// Mounts a private `size` tmpfs on /dev/shm for this process and its children, as a container
// has (Docker's default is 64 MiB). Returns what failed, or an empty string.
std::string mount_small_dev_shm(const char* size) {
  if (::unshare(CLONE_NEWNS) != 0) {
    return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return std::string("making mounts private: ") + std::strerror(errno);
  }
  const std::string options = std::string("size=") + size + ",mode=1777";
  if (::mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    return std::string("mounting a tmpfs on /dev/shm: ") + std::strerror(errno);
  }
  return "";
}

// Runs map(workers) on a 2-worker pool in a child process whose /dev/shm is a private 64 MiB tmpfs
// (Docker's default); reports whether the values were right and /dev/shm stayed empty.
ChildOutcome map_with_small_dev_shm(const std::function<bool(pool::ProcessPool&)>& map) {
  return run_in_child(
      [&map](std::ostream& report) {
        if (std::string why = mount_small_dev_shm("64m"); !why.empty()) {
          report << why;
          return kCannotSetUp;
        }
        pool::ProcessPool workers(2);
        const bool right = map(workers);
        report << (right ? "right" : "wrong") << " values; /dev/shm "
               << (std::filesystem::is_empty("/dev/shm") ? "empty" : "not empty");
        return right ? 0 : 1;
      },
      std::chrono::seconds(120));
}

using SmallDevShm = pool::testing::NoLeftoversTest;

TEST_F(SmallDevShm, AMapOfTenMillionDoublesWorksWithA64MiBDevShm) {
  const ChildOutcome outcome = map_with_small_dev_shm([](pool::ProcessPool& workers) {
    const std::vector<double> halves = workers.map(
        [](long k) { return 0.5 * static_cast<double>(k); }, pool::range(0L, 10'000'000L));
    bool right = halves.size() == 10'000'000u && halves.back() == 0.5 * 9'999'999.0;
    for (std::size_t k = 0; right && k < halves.size(); k += 9973) {
      right = halves[k] == 0.5 * static_cast<double>(k);
    }
    return right;
  });
  if (outcome.exited_with(kCannotSetUp)) GTEST_SKIP() << outcome.report;
  EXPECT_TRUE(outcome.exited_with(0)) << outcome.describe();
  EXPECT_EQ(outcome.report, "right values; /dev/shm empty");
}

TEST_F(SmallDevShm, AMapOverAThousandStringsOf100KiBWorksWithA64MiBDevShm) {
  const ChildOutcome outcome = map_with_small_dev_shm([](pool::ProcessPool& workers) {
    const std::vector<std::string> texts =
        workers.map([](int i) { return std::string(100 * 1024, static_cast<char>('a' + i % 26)); },
                    pool::range(0, 1000));
    bool right = texts.size() == 1000u;
    for (std::size_t i = 0; right && i < texts.size(); ++i) {
      right = texts[i] == std::string(100 * 1024, static_cast<char>('a' + i % 26));
    }
    return right;
  });
  if (outcome.exited_with(kCannotSetUp)) GTEST_SKIP() << outcome.report;
  EXPECT_TRUE(outcome.exited_with(0)) << outcome.describe();
  EXPECT_EQ(outcome.report, "right values; /dev/shm empty");
}

using ParentKilled = pool::testing::NoLeftoversTest;

// 40 parents, each killed at a random moment of a loop of maps whose results outgrow the workers'
// first result buffers (400 strings of 100 KB), by SIGKILL, SIGTERM, SIGHUP or SIGINT (default
// actions; SIGINT during a wait becomes pool::Interrupted).
TEST_F(ParentKilled, LeavesNoNameInDevShmAndNoProcessWhateverKillsItWhenever) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);  // orphaned workers come back to this test
  const unsigned seed = std::random_device{}();
  std::mt19937 random(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int signals[] = {SIGKILL, SIGTERM, SIGHUP, SIGINT};
  std::vector<std::string> left;
  for (int round = 0; round < 40; ++round) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    std::fflush(nullptr);
    const pid_t parent = ::fork();
    ASSERT_GE(parent, 0);
    if (parent == 0) {
      ::close(ready[0]);
      for (int signal_number : signals) ::signal(signal_number, SIG_DFL);
      try {
        pool::ProcessPool workers(2);
        [[maybe_unused]] auto told = ::write(ready[1], "r", 1);
        for (;;) {
          workers.map([](int i) { return std::string(100'000, static_cast<char>('a' + i % 26)); },
                      pool::range(0, 400));
        }
      } catch (...) {
        ::_exit(3);
      }
    }
    ::close(ready[1]);
    char byte = 0;
    ASSERT_EQ(::read(ready[0], &byte, 1), 1);
    ::close(ready[0]);
    std::this_thread::sleep_for(
        std::chrono::microseconds(std::uniform_int_distribution<int>(0, 300'000)(random)));
    const int signal_number = signals[round % 4];
    ::kill(parent, signal_number);
    ChildOutcome ending;
    pool::testing::wait_or_kill(parent, std::chrono::milliseconds(10'000), ending);
    EXPECT_TRUE(ending.finished) << "the parent did not end within 10 s of "
                                 << strsignal(signal_number);
    const std::vector<pid_t> alive =
        pool::testing::reap_children_within(std::chrono::milliseconds(5000));
    EXPECT_EQ(alive, std::vector<pid_t>{})
        << "workers still running 5 s after their parent got " << strsignal(signal_number);
    for (const std::string& name : pool::testing::shared_memory_named_by(parent)) {
      left.push_back(name + " (" + strsignal(signal_number) + ")");
      std::filesystem::remove("/dev/shm/" + name);  // do not leave it on the machine
    }
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  EXPECT_EQ(left, std::vector<std::string>{}) << "names left in /dev/shm by killed parents";
}

// The memory cgroup of this process, on a cgroup v1 hierarchy; empty when there is none.
std::string memory_cgroup_directory() {
  std::ifstream cgroups("/proc/self/cgroup");
  std::string line;
  while (std::getline(cgroups, line)) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    if (controllers == "memory") return "/sys/fs/cgroup/memory" + line.substr(second + 1);
  }
  return "";
}

// Runs body in a child process inside a new memory cgroup limited to `bytes`; the outcome has
// exit code kCannotSetUp when no cgroup can be made here.
ChildOutcome run_in_memory_cgroup(std::uint64_t bytes,
                                  const std::function<int(std::ostream&)>& body) {
  const std::string parent_group = memory_cgroup_directory();
  ChildOutcome cannot;
  cannot.finished = true;
  cannot.wait_status = kCannotSetUp << 8;
  if (parent_group.empty() || !std::filesystem::exists(parent_group + "/memory.limit_in_bytes")) {
    cannot.report = "needs a cgroup v1 memory controller";
    return cannot;
  }
  const std::string group = parent_group + "/pool-test-" + std::to_string(::getpid());
  std::error_code made;
  if (!std::filesystem::create_directory(group, made) || made) {
    cannot.report = "needs permission to create a memory cgroup under " + parent_group;
    return cannot;
  }
  const ChildOutcome outcome = run_in_child(
      [&](std::ostream& report) {
        std::ofstream(group + "/memory.limit_in_bytes") << bytes;
        std::ofstream(group + "/cgroup.procs") << ::getpid();
        return body(report);
      },
      std::chrono::seconds(120));
  std::filesystem::remove(group);
  return outcome;
}

using MemoryLimit = pool::testing::NoLeftoversTest;

// Results that outgrow what the memory cgroup allows: a clear pool::OutOfMemory naming the
// buffer, where the OOM killer used to kill a worker (or the parent).
TEST_F(MemoryLimit, ResultsLargerThanTheAvailableMemoryGiveOutOfMemoryAndThePoolGoesOn) {
  const ChildOutcome outcome = run_in_memory_cgroup(256 << 20, [](std::ostream& report) {
    pool::ProcessPool workers(1);
    try {
      // One chunk of 40 results of 10 MB: 400 MB in the worker's result buffer at once.
      workers.map([](int) { return std::string(10'000'000, 'r'); }, pool::range(0, 40), 40);
      report << "map returned";
      return 1;
    } catch (const pool::OutOfMemory& error) {
      report << "OutOfMemory: " << error.what();
    }
    const auto small = workers.map([](int i) { return std::to_string(i); }, pool::range(0, 3));
    report << "; next map "
           << (small == std::vector<std::string>{"0", "1", "2"} ? "right" : "wrong");
    return 0;
  });
  if (outcome.exited_with(kCannotSetUp)) GTEST_SKIP() << outcome.report;
  EXPECT_TRUE(outcome.exited_with(0)) << outcome.describe();
  EXPECT_NE(outcome.report.find("OutOfMemory: pool: the result buffer of worker process"),
            std::string::npos)
      << outcome.report;
  EXPECT_NE(outcome.report.find("next map right"), std::string::npos) << outcome.report;
}

// Trivially copyable results go straight into the job's shared region: a map whose region does not
// fit is refused before it is posted.
TEST_F(MemoryLimit, AMapWhoseResultsDoNotFitGivesOutOfMemoryBeforeItRuns) {
  const ChildOutcome outcome = run_in_memory_cgroup(256 << 20, [](std::ostream& report) {
    pool::ProcessPool workers(2);
    try {
      // 40 M doubles: 320 MB of shared memory, and as much again for the returned vector.
      workers.map([](long k) { return static_cast<double>(k); }, pool::range(0L, 40'000'000L));
      report << "map returned";
      return 1;
    } catch (const pool::OutOfMemory& error) {
      report << "OutOfMemory for " << error.requested_bytes() << " bytes: " << error.what();
    }
    const auto small = workers.map([](long k) { return k + 1; }, pool::range(0L, 3L));
    report << "; next map " << (small == std::vector<long>{1, 2, 3} ? "right" : "wrong");
    return 0;
  });
  if (outcome.exited_with(kCannotSetUp)) GTEST_SKIP() << outcome.report;
  EXPECT_TRUE(outcome.exited_with(0)) << outcome.describe();
  EXPECT_NE(outcome.report.find("OutOfMemory for "), std::string::npos) << outcome.report;
  EXPECT_NE(outcome.report.find("next map right"), std::string::npos) << outcome.report;
}

// A task that itself takes more memory than there is cannot be foreseen: the OOM killer ends its
// worker, and the error says that memory ran out.
TEST_F(MemoryLimit, AWorkerKilledByTheOomKillerGivesWorkerDiedSayingMemoryRanOut) {
  const ChildOutcome outcome = run_in_memory_cgroup(128 << 20, [](std::ostream& report) {
    pool::ProcessPool workers(1);
    try {
      workers.apply([] {
        std::vector<char> hog(512 << 20);
        for (std::size_t i = 0; i < hog.size(); i += 4096) hog[i] = 1;
        return static_cast<int>(hog[4096]);
      });
      report << "apply returned";
      return 1;
    } catch (const pool::WorkerDied& error) {
      report << "WorkerDied: " << error.what();
    }
    report << "; next " << workers.apply([] { return 7; });
    return 0;
  });
  if (outcome.exited_with(kCannotSetUp)) GTEST_SKIP() << outcome.report;
  EXPECT_TRUE(outcome.exited_with(0)) << outcome.describe();
  EXPECT_NE(outcome.report.find("OOM killer"), std::string::npos) << outcome.report;
  EXPECT_NE(outcome.report.find("; next 7"), std::string::npos) << outcome.report;
}

using MemoryRecycling = pool::testing::NoLeftoversTest;

// Where a worker keeps what it leaks, so that the compiler cannot drop the allocation.
std::vector<char*> g_leaked;

// A task that leaks 64 MiB a chunk, against a 200 MiB limit: no worker runs more than 4 chunks
// (after the third it holds about 192 MiB plus its own, after the fourth 256 MiB), every result
// comes back, and the pool goes on.
TEST_F(MemoryRecycling, AWorkerOverMaxMemoryPerChildIsReplacedBeforeItsNextChunk) {
  pool::ProcessPoolOptions options;
  options.max_memory_per_child = 200ull << 20;
  pool::ProcessPool workers(2, options);
  const auto leak_64_mib = [](int i) {
    constexpr std::size_t kBytes = 64u << 20;
    auto* leaked = static_cast<char*>(std::malloc(kBytes));
    if (leaked == nullptr) throw std::bad_alloc();
    std::memset(leaked, i, kBytes);  // resident, not just reserved
    g_leaked.push_back(leaked);
    return std::pair<int, int>(i, static_cast<int>(::getpid()));
  };
  const auto results = workers.map(leak_64_mib, pool::range(0, 16), 1);
  std::map<int, int> chunks_per_pid;
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(results[static_cast<std::size_t>(i)].first, i);
    ++chunks_per_pid[results[static_cast<std::size_t>(i)].second];
  }
  EXPECT_GE(chunks_per_pid.size(), 4u) << "16 chunks of 64 MiB need at least 4 workers' lives";
  for (const auto& [pid, chunks] : chunks_per_pid) {
    EXPECT_LE(chunks, 4) << "worker " << pid << " went on past 200 MiB";
  }
  EXPECT_EQ(workers.map([](int i) { return i * 2; }, pool::range(0, 3)),
            (std::vector<int>{0, 2, 4}));
  EXPECT_EQ(workers.size(), 2);
}

}  // namespace
