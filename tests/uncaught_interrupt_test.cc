// Ctrl-C in a program that does not catch pool::Interrupted: it ends killed by SIGINT, as a
// program without a pool would (a shell reports 130), not by std::terminate's abort (134), and
// leaves no process behind. A program with its own SIGINT handler keeps it.
//
// The program (tests/uncaught_interrupt_program) runs as a child with stdout on a pipe; SIGINT goes
// to it alone once it printed "mapping", i.e. while it waits in a map of long tasks. The test is a
// child subreaper, so workers that outlived the program would become its children and be seen.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/child_process.h"
#include "tests/leak_check.h"

namespace {

using namespace std::chrono_literals;

constexpr auto kPatience = 20s;  // for the program to start, and to end after SIGINT
constexpr char kProgram[] = "tests/uncaught_interrupt_program";  // in the test's runfiles

using pool::testing::ChildOutcome;

// Runs the program with SIGINT at its default action (a shell's background job would inherit
// SIG_IGN, which hides the behaviour under test), sends it SIGINT ~300 ms after it printed
// "mapping", and waits for it to end. Never hangs: kills the program after kPatience.
// ChildOutcome::report holds the program's stdout.
ChildOutcome interrupt_program(const char* argument) {
  ChildOutcome ending;
  int out[2];
  if (::pipe(out) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return ending;
  }
  const pid_t child = ::fork();
  if (child < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return ending;
  }
  if (child == 0) {
    ::signal(SIGINT, SIG_DFL);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGINT);
    ::sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    ::execl(kProgram, kProgram, argument, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);

  // The workers inherit the pipe too: the program's "mapping", not EOF, ends this wait.
  const auto start_deadline = std::chrono::steady_clock::now() + kPatience;
  bool open = true;
  while (open && ending.report.find("mapping\n") == std::string::npos &&
         std::chrono::steady_clock::now() < start_deadline) {
    pollfd readable{out[0], POLLIN, 0};
    if (::poll(&readable, 1, 50) <= 0) continue;
    char buffer[256];
    const ssize_t n = ::read(out[0], buffer, sizeof(buffer));
    if (n > 0) {
      ending.report.append(buffer, static_cast<std::size_t>(n));
    } else {
      open = false;
    }
  }
  ::close(out[0]);
  EXPECT_NE(ending.report.find("mapping\n"), std::string::npos) << "the program never started";

  // Let it get into the map's wait, where the pool catches SIGINT.
  std::this_thread::sleep_for(300ms);
  ::kill(child, SIGINT);
  pool::testing::wait_or_kill(child, kPatience, ending);
  return ending;
}

class UncaughtInterrupt : public pool::testing::NoLeftoversTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0) << std::strerror(errno);
  }
  void TearDown() override {
    // The program's workers, had any outlived it, are this process's children now; a zombie is
    // dead, so only those still running count.
    EXPECT_EQ(pool::testing::reap_children_within(3s), std::vector<pid_t>{})
        << "processes of the program still running after it ended";
    ::prctl(PR_SET_CHILD_SUBREAPER, 0);
    NoLeftoversTest::TearDown();
  }
};

TEST_F(UncaughtInterrupt, CtrlCEndsAProgramThatDoesNotCatchInterruptedAsKilledBySigint) {
  const ChildOutcome ending = interrupt_program(nullptr);
  EXPECT_TRUE(ending.finished && WIFSIGNALED(ending.wait_status) &&
              WTERMSIG(ending.wait_status) == SIGINT)
      << "wanted killed by SIGINT (status 130 in a shell), not SIGABRT (134); it was "
      << ending.describe();
}

TEST_F(UncaughtInterrupt, AProgramWithItsOwnSigintHandlerKeepsIt) {
  const ChildOutcome ending = interrupt_program("own-handler");
  EXPECT_TRUE(ending.finished && WIFEXITED(ending.wait_status) &&
              WEXITSTATUS(ending.wait_status) == 42)
      << "wanted the program's own handler's exit status 42; it was " << ending.describe();
}

}  // namespace
