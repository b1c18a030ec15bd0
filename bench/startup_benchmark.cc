// Workload 3: a pool's whole life for a tiny job (create, map 10 squares, destroy) beside forking
// and reaping as many bare children.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bench/benchmarks.h"
#include "bench/references.h"
#include "pool/pool.h"

namespace bench {

void register_startup(const Config& config) {
  for (int pool_size : config.startup_workers) {
    const std::string size = "/workers:" + std::to_string(pool_size);
    add_benchmark("startup/process_pool" + size, [pool_size](benchmark::State& state) {
      std::int64_t last = 0;
      for (auto _ : state) {
        pool::ProcessPool workers(pool_size);
        last =
            workers.map([](std::int64_t x) { return x * x; }, pool::range(std::int64_t{10})).back();
      }
      if (last != 81) state.SkipWithError("a wrong square came back");
    })->UseRealTime();
    add_benchmark("startup/fork_waitpid" + size, [pool_size](benchmark::State& state) {
      for (auto _ : state) fork_and_reap(pool_size);
    })->UseRealTime();
  }
}

}  // namespace bench
