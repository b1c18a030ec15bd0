// A map during which one worker rank dies as the argument says: segv (a signal), kill (SIGKILL,
// which the rank cannot report), exit (exit() in a task), silent (its task never returns, under a
// 2 s task_timeout), or none (a clean run). Prints "done" when the map returns.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "pool/mpi_pool.h"

int main(int argc, char** argv) {
  pool::MpiPool::serve_workers();
  const std::string how = argc > 1 ? argv[1] : "none";
  // silent: the rank's task never returns (a hung task, or a node lost with its link cut); the
  // pool's task_timeout bounds the wait.
  pool::MpiPoolOptions options;
  if (how == "silent") options.task_timeout = std::chrono::seconds(2);
  pool::MpiPool workers(0, options);
  const auto results = workers.map(
      [how_code = how == "segv"     ? 1
                  : how == "kill"   ? 2
                  : how == "exit"   ? 3
                  : how == "silent" ? 4
                                    : 0](int x) {
        if (x == 37) {
          if (how_code == 1) std::raise(SIGSEGV);
          if (how_code == 2) std::raise(SIGKILL);
          if (how_code == 3) std::exit(3);
          if (how_code == 4) sleep(600);
        }
        usleep(2000);
        return x;
      },
      pool::range(0, 100), 5);
  std::printf("done %zu\n", results.size());
  return 0;
}
