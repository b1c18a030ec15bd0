// The no-leftovers check every pool test runs after itself: no child process of the test (alive or
// zombie) and no shared-memory segment named by it may remain.
#ifndef TESTS_LEAK_CHECK_H_
#define TESTS_LEAK_CHECK_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace pool::testing {

// Pids of this process's children, zombies included.
std::vector<pid_t> child_processes();
// This process's forkserver (Start::forkserver), or -1 when none runs.
pid_t forkserver_process();
// Pools once named their segments "cpp-pool-<creator pid>-..." in /dev/shm; nothing they make has a
// name now (memfd), and the check stays so that a name coming back is caught.
inline constexpr const char* kSegmentPrefix = "cpp-pool-";
// /dev/shm entries named by process `pid`.
std::vector<std::string> shared_memory_named_by(pid_t pid);

class NoLeftoversTest : public ::testing::Test {
 protected:
  void TearDown() override;
};

}  // namespace pool::testing

#endif  // TESTS_LEAK_CHECK_H_
