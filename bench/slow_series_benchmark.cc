// Workload 1: the course's slow series on 1..P workers, by the pool and by the references that
// bound it: bare fork()+pipe (processes), an OpenMP parallel for reduction (threads), one loop.
// Every implementation sums the same intervals with the same function, so only the way the work
// is spread differs.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/benchmarks.h"
#include "bench/references.h"
#include "examples/slow_series.h"
#include "pool/pool.h"

namespace bench {
namespace {

using examples::DigitMethod;
using examples::Interval;

double partial_sum(const Interval& interval) {
  return examples::slow_series_partial_sum(interval, DigitMethod::kInteger);
}

double sum_in_order(const std::vector<double>& partials) {
  double sum = 0.0;
  for (double partial : partials) sum += partial;
  return sum;
}

// A fast wrong answer is no result: every run's sum is checked against the serial sum.
bool matches_serial(double sum, std::int64_t n) {
  static std::map<std::int64_t, double> serial_sums;
  auto [it, added] = serial_sums.try_emplace(n, 0.0);
  if (added) it->second = partial_sum({1, n});
  return std::abs(sum - it->second) <= 1e-12 * it->second;
}

void finish(benchmark::State& state, double sum, std::int64_t n, int ncores) {
  if (!matches_serial(sum, n)) {
    state.SkipWithError(("the sum on " + std::to_string(ncores) + " workers, " +
                         std::to_string(sum) + ", differs from the serial sum")
                            .c_str());
  }
  state.counters["ncores"] = ncores;
  state.SetItemsProcessed(state.iterations() * n);
}

template <class Run>
void measure(benchmark::State& state, std::int64_t n, int ncores, Run&& run) {
  double sum = 0.0;
  for (auto _ : state) {
    sum = run();
    benchmark::DoNotOptimize(sum);
  }
  finish(state, sum, n, ncores);
}

// One run per repetition: a run takes about a second.
benchmark::internal::Benchmark* add(const std::string& name,
                                    std::function<void(benchmark::State&)> body) {
  return add_benchmark(name, std::move(body))->Iterations(1);
}

}  // namespace

void register_slow_series(const Config& config) {
  const std::int64_t n = config.slow_series_n;
  add("slow_series/serial", [n](benchmark::State& state) {
    measure(state, n, 1, [n] { return partial_sum({1, n}); });
  })->UseRealTime();
  for (int p : config.ncores) {
    const std::string cores = "/ncores:" + std::to_string(p);
    add("slow_series/fork_pipe" + cores, [n, p](benchmark::State& state) {
      const auto intervals = examples::partition(n, p);
      measure(state, n, p, [&] {
        return sum_in_order(fork_pipe_map(p, [&](int i) { return partial_sum(intervals[i]); }));
      });
    })->UseRealTime();
    add("slow_series/process_pool" + cores, [n, p](benchmark::State& state) {
      measure(state, n, p, [&] {
        pool::ProcessPool workers(p);  // start-up and shutdown count, as fork and waitpid do
        return sum_in_order(
            workers.map(examples::PartialSum{DigitMethod::kInteger}, examples::partition(n, p)));
      });
    })->UseRealTime();
  }
  for (int p : config.ncores) {
    const std::string cores = "/ncores:" + std::to_string(p);
    add("slow_series/free_threads" + cores, [n, p](benchmark::State& state) {
      measure(state, n, p, [&] {
        pool::FreeThreadPool workers(p);
        return sum_in_order(
            workers.map(examples::PartialSum{DigitMethod::kInteger}, examples::partition(n, p)));
      });
    })->UseRealTime();
    // An OpenMP team's threads stay in their process: the reference runs in a child that times
    // itself (team start-up included), so this process never has threads when a pool forks.
    add("slow_series/openmp" + cores, [n, p](benchmark::State& state) {
      double sum = 0.0;
      for (auto _ : state) {
        const Timed run = in_child([&] {
          const auto intervals = examples::partition(n, p);
          const double start = omp_get_wtime();
          double total = 0.0;
#pragma omp parallel for num_threads(p) schedule(static, 1) reduction(+ : total)
          for (int i = 0; i < p; ++i) total += partial_sum(intervals[i]);
          return Timed{total, omp_get_wtime() - start};
        });
        sum = run.value;
        state.SetIterationTime(run.seconds);
      }
      finish(state, sum, n, p);
    })->UseManualTime();
  }
}

}  // namespace bench
