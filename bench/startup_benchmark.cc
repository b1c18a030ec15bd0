// Workload 3: a pool's whole life for a tiny job (create, map 10 squares, destroy), by each start
// method, beside forking and reaping as many bare children, and spawning and reaping as many bare
// executions of this program. The forkserver is started before the clock, as a program's first
// forkserver pool (or pool::start_forkserver()) starts it once.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bench/benchmarks.h"
#include "bench/references.h"
#include "pool/pool.h"

namespace bench {

namespace {

void pool_life(benchmark::State& state, int pool_size, pool::Start start) {
  if (start == pool::Start::forkserver) pool::start_forkserver();
  pool::ProcessPoolOptions options;
  options.start = start;
  std::int64_t last = 0;
  for (auto _ : state) {
    pool::ProcessPool workers(pool_size, options);
    last = workers.map([](std::int64_t x) { return x * x; }, pool::range(std::int64_t{10})).back();
  }
  if (last != 81) state.SkipWithError("a wrong square came back");
}

}  // namespace

void register_startup(const Config& config) {
  for (int pool_size : config.startup_workers) {
    const std::string size = "/workers:" + std::to_string(pool_size);
    add_benchmark("startup/process_pool" + size, [pool_size](benchmark::State& state) {
      pool_life(state, pool_size, pool::Start::fork);
    })->UseRealTime();
    add_benchmark("startup/process_pool_forkserver" + size, [pool_size](benchmark::State& state) {
      pool_life(state, pool_size, pool::Start::forkserver);
    })->UseRealTime();
    add_benchmark("startup/process_pool_spawn" + size, [pool_size](benchmark::State& state) {
      pool_life(state, pool_size, pool::Start::spawn);
    })->UseRealTime();
    add_benchmark("startup/fork_waitpid" + size, [pool_size](benchmark::State& state) {
      for (auto _ : state) fork_and_reap(pool_size);
    })->UseRealTime();
    add_benchmark("startup/posix_spawn_waitpid" + size, [pool_size](benchmark::State& state) {
      for (auto _ : state) spawn_and_reap(pool_size);
    })->UseRealTime();
  }
}

}  // namespace bench
