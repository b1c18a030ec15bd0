// What the pool is measured against: the same work done by bare system calls, with nothing a pool
// adds. Each is the limit one part of the pool can approach.
#ifndef BENCH_REFERENCES_H_
#define BENCH_REFERENCES_H_

#include <cstdint>
#include <functional>
#include <vector>

namespace bench {

// Forks one child per part, runs part(i) in child i, reads its double back through a pipe and
// reaps it: the slow series the way one writes it by hand without a pool. Returns the values in
// part order; throws std::system_error when a system call fails, std::runtime_error when a child
// does not answer.
std::vector<double> fork_pipe_map(int parts, const std::function<double(int)>& part);

// A value and the seconds its computation took, as measured where it ran.
struct Timed {
  double value = 0.0;
  double seconds = 0.0;
};

// Runs body() in a forked child and returns what it measured, read through a pipe. This process
// never starts the threads the child may start (an OpenMP team), so process pools can still fork.
Timed in_child(const std::function<Timed()>& body);

// Forks `children` children that exit at once and reaps them: the least a pool's start-up and
// shutdown can cost.
void fork_and_reap(int children);

// Starts `children` new executions of this program (posix_spawn of /proc/self/exe with
// kExitAtOnce as its only argument: main returns at once) and reaps them: the least a spawned
// pool's start-up and shutdown can cost.
inline constexpr const char* kExitAtOnce = "--exit-at-once";
void spawn_and_reap(int children);

// `processes` processes (this one and children forked once) that take item indices one at a time
// from one atomic counter in shared memory and write i * i into a shared array: the limit for
// handing out single items through one shared cursor, as a pool with one cursor per call does.
// Not thread-safe; one at a time.
class SharedCounterLimit {
 public:
  SharedCounterLimit(std::int64_t max_items, int processes = 2);
  ~SharedCounterLimit();
  SharedCounterLimit(const SharedCounterLimit&) = delete;
  SharedCounterLimit& operator=(const SharedCounterLimit&) = delete;

  // All processes square items [0, items); returns once all are written.
  void run(std::int64_t items);
  // The shared array's item i (written by run).
  std::int64_t result(std::int64_t i) const;

 private:
  struct Shared;
  Shared* shared_;
  std::int64_t* results_;
  std::int64_t max_items_;
  std::vector<int> children_;
};

}  // namespace bench

#endif  // BENCH_REFERENCES_H_
