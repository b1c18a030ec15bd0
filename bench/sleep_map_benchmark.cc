// Workload 5: the course's sleep map, 10 tasks of 1 s on 4 workers, on every pool: ideally
// ceil(10 / 4) = 3 rounds of sleep, pool start-up and shutdown included.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bench/benchmarks.h"
#include "pool/pool.h"

namespace bench {
namespace {

template <class Pool>
void sleep_map(benchmark::State& state, const Config& config) {
  const auto nap = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(config.sleep_seconds));
  std::int64_t done = 0;
  for (auto _ : state) {
    Pool workers(config.sleep_workers);
    const std::vector<int> ones = workers.map(
        [nap](std::int64_t) {
          pool::gil::sleep_for(nap);  // releases a GilThreadPool's lock, as time.sleep does
          return 1;
        },
        pool::range(std::int64_t{config.sleep_tasks}));
    done = 0;
    for (int one : ones) done += one;
  }
  if (done != config.sleep_tasks) state.SkipWithError("a task did not run");
  const int rounds = (config.sleep_tasks + config.sleep_workers - 1) / config.sleep_workers;
  state.counters["ideal_s"] = rounds * config.sleep_seconds;
}

}  // namespace

void register_sleep_map(const Config& config) {
  using Run = void (*)(benchmark::State&, const Config&);
  const std::pair<const char*, Run> pools[] = {
      {"sleep_map/process_pool", &sleep_map<pool::ProcessPool>},
      {"sleep_map/gil_threads", &sleep_map<pool::GilThreadPool>},
      {"sleep_map/free_threads", &sleep_map<pool::FreeThreadPool>},
  };
  for (const auto& [name, run] : pools) {
    add_benchmark(name, [config, run](benchmark::State& state) { run(state, config); })
        ->Iterations(1)
        ->UseRealTime();
  }
}

}  // namespace bench
