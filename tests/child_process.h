// Runs a piece of a test in a forked child process, with a deadline: for behaviour that changes
// the process itself (a mount namespace, a lower process limit, another user, a memory cgroup) or
// that could hang or kill it on a broken pool. The child writes what it saw to `report`.
#ifndef TESTS_CHILD_PROCESS_H_
#define TESTS_CHILD_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace pool::testing {

// The child's exit code when what it tests cannot be set up here (no permission for namespaces,
// cgroups, ...); its report says why.
inline constexpr int kCannotSetUp = 77;

struct ChildOutcome {
  bool finished = false;  // false: killed at the deadline
  int wait_status = 0;
  std::string report;

  bool exited_with(int code) const;
  // "exited with 3", "killed by signal 9 (Killed)", "still running at the deadline", then the
  // report.
  std::string describe() const;
};

// Forks; the child runs body(report) and exits with its return value (an exception that escapes
// is reported, exit 99). Never returns into the caller's stack in the child.
ChildOutcome run_in_child(const std::function<int(std::ostream& report)>& body,
                          std::chrono::seconds deadline);

// Waits until child `pid` ends or `limit` passes, then kills it (SIGKILL); reaps it either way.
// Sets outcome.finished and outcome.wait_status.
void wait_or_kill(pid_t pid, std::chrono::milliseconds limit, ChildOutcome& outcome);

// The state letter of /proc/<pid>/stat ('Z' for a zombie), or 0 when there is no such process.
char process_state(pid_t pid);

// Waits up to `limit` until every child process of this one has ended (zombies count as ended:
// a zombie is dead), then reaps them. Returns the pids that were still alive at the limit
// (killed and reaped then).
std::vector<pid_t> reap_children_within(std::chrono::milliseconds limit);

}  // namespace pool::testing

#endif  // TESTS_CHILD_PROCESS_H_
