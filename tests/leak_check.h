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
// /dev/shm entries created by this process (pool segments carry the creator's pid).
std::vector<std::string> own_shared_memory();

class NoLeftoversTest : public ::testing::Test {
 protected:
  void TearDown() override;
};

}  // namespace pool::testing

#endif  // TESTS_LEAK_CHECK_H_
