// The course's first pool example: tasks that only sleep. Sleeping releases the GIL, so even
// threads under one interpreter lock overlap, and the time is rounds of sleeps, not their sum:
//
//   sleep_map --ncores 4
//   running with 4 processes: 10 tasks, each sleeping 1.0 s
//   Time in seconds: 3.004
//   tasks done = 10
//
// About 3 s with 4 workers on every backend (ceil(10 / 4) rounds), 10 s with 1 or serially.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "examples/example.h"
#include "pool/pool.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  examples::Example example("sleep_map",
                            "Usage: sleep_map [--tasks N] [--seconds S] [common options]\n"
                            "Maps a task that sleeps S seconds over N inputs");
  example.options().add_options()("tasks", po::value<std::string>()->default_value("10"),
                                  "number of tasks")(
      "seconds", po::value<std::string>()->default_value("1.0"),
      "seconds each task sleeps (fractions allowed)");
  example.parse(argc, argv);
  const std::int64_t tasks = example.whole_number("tasks", 1);
  const double seconds = example.positive_number("seconds");

  return example.run([&](auto& workers) {
    example.out() << example.running_on() << ": " << tasks << " tasks, each sleeping "
                  << examples::python_repr(seconds) << " s" << std::endl;
    const auto nap = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(seconds));
    // One task per chunk: each is long, so an idle worker should take the next one at once.
    const std::vector<int> done = workers.map(
        [nap](std::int64_t) {
          pool::gil::sleep_for(nap);
          return 1;
        },
        pool::range(tasks), 1);
    std::int64_t completed = 0;
    for (int one : done) completed += one;
    examples::Outcome outcome(tasks, static_cast<double>(completed));
    outcome.lines = {"tasks done = " + std::to_string(completed)};
    outcome.fields = {{"tasks", tasks}, {"seconds_per_task", seconds}};
    return outcome;
  });
}
