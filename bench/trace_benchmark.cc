// What tracing costs: single items (chunksize 1) dispatched per second on each pool, untraced and
// traced, side by side in one run. Untraced is the number to compare with a build from before
// pool::Trace existed: this file builds there too (the traced cases drop out), e.g.
//   g++ -std=c++20 -O2 -I. bench/trace_benchmark.cc <pool sources> -lbenchmark -lpthread -lrt
// on both trees (README, "What tracing costs").
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>

#include "pool/pool.h"

#if __has_include("pool/trace.h")
#define POOL_BENCH_HAS_TRACE 1
#endif

namespace {

constexpr std::int64_t kItems = 20000;
constexpr int kWorkers = 2;

struct Identity {
  std::int64_t operator()(std::int64_t x) const { return x; }
};

template <class Pool>
void dispatch(benchmark::State& state, Pool& workers) {
  for (auto _ : state) {
    auto results = workers.map(Identity{}, pool::range(std::int64_t{0}, kItems), 1);
    benchmark::DoNotOptimize(results.data());
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}

// Options for a pool that records into a fresh trace (traced) or not at all.
template <class Options>
Options options_for(bool traced) {
  Options options;
#ifdef POOL_BENCH_HAS_TRACE
  // A small buffer: once full, a worker only counts the events it drops, the steady state of a
  // long traced run.
  if (traced) options.trace = std::make_shared<pool::Trace>(1024);
#else
  (void)traced;
#endif
  return options;
}

void BM_ProcessPoolDispatch(benchmark::State& state) {
  pool::ProcessPool workers(kWorkers, options_for<pool::ProcessPoolOptions>(state.range(0) != 0));
  dispatch(state, workers);
}

void BM_FreeThreadPoolDispatch(benchmark::State& state) {
  pool::FreeThreadPool workers(kWorkers, options_for<pool::ThreadPoolOptions>(state.range(0) != 0));
  dispatch(state, workers);
}

void BM_GilThreadPoolDispatch(benchmark::State& state) {
  pool::GilThreadPool workers(kWorkers, pool::GilThreadPool::kDefaultSwitchInterval,
                              options_for<pool::ThreadPoolOptions>(state.range(0) != 0));
  dispatch(state, workers);
}

#ifdef POOL_BENCH_HAS_TRACE
#define TRACED_ARGS ArgName("traced")->Arg(0)->Arg(1)
#else
#define TRACED_ARGS ArgName("traced")->Arg(0)
#endif

// Each benchmark's pool is gone before the next starts: a process pool refuses to fork while a
// thread pool's threads run.
BENCHMARK(BM_ProcessPoolDispatch)->TRACED_ARGS->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FreeThreadPoolDispatch)->TRACED_ARGS->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GilThreadPoolDispatch)->TRACED_ARGS->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
