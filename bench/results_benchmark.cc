// Workload 4: bringing results back. map returning 10^7 doubles (trivially copyable: written once
// into shared memory by the workers, copied once into the vector) and 10^5 strings of 1 KiB
// (encoded by the workers, decoded once), beside a memcpy of the same bytes into fresh memory,
// which is what any returned vector costs at least.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/benchmarks.h"
#include "pool/pool.h"

namespace bench {
namespace {

struct Half {
  double operator()(std::int64_t i) const { return 0.5 * static_cast<double>(i); }
};

struct Letters {
  std::int64_t bytes;
  std::string operator()(std::int64_t i) const {
    return std::string(static_cast<std::size_t>(bytes), static_cast<char>('a' + i % 26));
  }
};

// A copy of `bytes` bytes into memory the process has not touched yet, as a returned vector is.
void copy_into_fresh_memory(benchmark::State& state, std::size_t bytes) {
  std::vector<char> source(bytes, 'x');
  for (auto _ : state) {
    std::unique_ptr<char[]> target(new char[bytes]);
    std::memcpy(target.get(), source.data(), bytes);
    benchmark::DoNotOptimize(target.get());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
}

benchmark::internal::Benchmark* add(const std::string& name,
                                    std::function<void(benchmark::State&)> body) {
  return add_benchmark(name, std::move(body))->UseRealTime();
}

}  // namespace

void register_results(const Config& config) {
  const int pool_size = config.workers;
  const std::int64_t doubles = config.result_doubles;
  add("results/doubles/process_pool", [=](benchmark::State& state) {
    pool::ProcessPool workers(pool_size);
    double last = 0;
    for (auto _ : state) {
      const std::vector<double> values = workers.map(Half{}, pool::range(std::int64_t{0}, doubles));
      last = values.back();
    }
    if (last != Half{}(doubles - 1)) state.SkipWithError("a wrong value came back");
    state.SetBytesProcessed(state.iterations() * doubles *
                            static_cast<std::int64_t>(sizeof(double)));
  });
  add("results/doubles/memcpy", [=](benchmark::State& state) {
    copy_into_fresh_memory(state, static_cast<std::size_t>(doubles) * sizeof(double));
  });

  const std::int64_t strings = config.result_strings;
  const std::int64_t bytes = config.string_bytes;
  add("results/strings/process_pool", [=](benchmark::State& state) {
    pool::ProcessPool workers(pool_size);
    std::string last;
    for (auto _ : state) {
      const std::vector<std::string> values =
          workers.map(Letters{bytes}, pool::range(std::int64_t{0}, strings));
      last = values.back();
    }
    if (last != Letters{bytes}(strings - 1)) state.SkipWithError("a wrong string came back");
    state.SetBytesProcessed(state.iterations() * strings * bytes);
  });
  add("results/strings/memcpy", [=](benchmark::State& state) {
    copy_into_fresh_memory(state, static_cast<std::size_t>(strings * bytes));
  });
}

}  // namespace bench
