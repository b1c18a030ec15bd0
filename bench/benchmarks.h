// The pool's benchmarks, each registered beside the reference that bounds it (bench/references.h).
// tools/bench runs them and prints the table of targets; tools/compare_python runs some of them
// beside Python's multiprocessing.Pool.
#ifndef BENCH_BENCHMARKS_H_
#define BENCH_BENCHMARKS_H_

#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace bench {

struct Config {
  std::int64_t slow_series_n = 100'000'000;
  std::vector<int> ncores;  // worker counts for the slow series; default 1..available CPUs
  int workers = 2;          // the other workloads' pool size; default: available CPUs
  std::vector<std::int64_t> dispatch_items = {100'000, 1'000'000, 10'000'000};
  // Dispatch at 1..16 workers (more workers than cores here: contention and wake-up costs).
  std::vector<int> dispatch_workers = {1, 2, 4, 8, 16};
  std::int64_t dispatch_scaling_items = 1'000'000;
  std::vector<int> startup_workers = {2, 4};
  std::vector<std::int64_t> cold_items = {1'000'000, 10'000'000};
  std::int64_t result_doubles = 10'000'000;
  std::int64_t result_strings = 100'000;
  std::int64_t string_bytes = 1024;
  int sleep_tasks = 10;
  double sleep_seconds = 1.0;
  int sleep_workers = 4;
};

// Benchmarks are named workload/implementation/parameters, e.g. slow_series/fork_pipe/ncores:2.
// Process pools run before thread pools and the OpenMP reference runs in a child process, so no
// thread exists in this process when a ProcessPool forks.
// Registers one benchmark, reported in milliseconds; callers add how it is timed.
inline benchmark::internal::Benchmark* add_benchmark(const std::string& name,
                                                     std::function<void(benchmark::State&)> body) {
  return benchmark::RegisterBenchmark(name.c_str(), std::move(body))->Unit(benchmark::kMillisecond);
}

void register_slow_series(const Config& config);
void register_dispatch(const Config& config);
void register_startup(const Config& config);
void register_results(const Config& config);
void register_sleep_map(const Config& config);
void register_cold_calls(const Config& config);
// The measuring child of the cold-call benchmarks (pool_benchmark --cold-child WHAT N WORKERS):
// prints the seconds its one call took; returns the exit status.
int run_cold_child(const std::string& what, std::int64_t n, int workers);

}  // namespace bench

#endif  // BENCH_BENCHMARKS_H_
