// The pool's benchmarks beside their references; see bench/benchmarks.h. Google Benchmark's flags
// (--benchmark_filter, --benchmark_repetitions, --benchmark_format=json, ...) plus the sizes below.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "bench/benchmarks.h"
#include "bench/references.h"
#include "examples/cli.h"
#include "pool/cpus.h"

namespace po = boost::program_options;

namespace {

constexpr char kProgram[] = "pool_benchmark";

std::vector<int> counts(const std::vector<std::int64_t>& values) {
  return std::vector<int>(values.begin(), values.end());
}

bench::Config parse(int argc, char** argv) {
  bench::Config config;
  const int cpus = pool::available_cpus();
  po::options_description options("Workload sizes (Google Benchmark's own flags are accepted too)");
  options.add_options()("n", po::value<std::string>()->default_value("100000000"),
                        "slow series: sum k = 1..n")(
      "ncores", po::value<std::string>(),
      "slow series: comma-separated worker counts (default 1..available CPUs)")(
      "workers", po::value<std::string>()->default_value(std::to_string(cpus)),
      "workers of the dispatch and result pools")(
      "dispatch-items", po::value<std::string>()->default_value("100000,1000000,10000000"),
      "dispatch: comma-separated N")("dispatch-workers",
                                     po::value<std::string>()->default_value("1,2,4,8,16"),
                                     "dispatch scaling: comma-separated pool sizes")(
      "dispatch-scaling-items", po::value<std::string>()->default_value("1000000"),
      "dispatch scaling: N")("cold-items",
                             po::value<std::string>()->default_value("1000000,10000000"),
                             "first call on a fresh pool: comma-separated N squares")(
      "startup-workers", po::value<std::string>()->default_value("2,4"),
      "start-up: comma-separated pool sizes")("result-doubles",
                                              po::value<std::string>()->default_value("10000000"),
                                              "results: doubles returned by one map")(
      "result-strings", po::value<std::string>()->default_value("100000"),
      "results: 1 KiB strings returned by one map")(
      "sleep-seconds", po::value<std::string>()->default_value("1.0"),
      "sleep map: seconds each of the 10 tasks sleeps");
  const po::variables_map flags = examples::parse_flags(
      argc, argv, "Usage: pool_benchmark [--benchmark_...] [workload sizes]", options);
  auto whole = [&](const char* flag, std::int64_t minimum) {
    return examples::parse_at_least(kProgram, flag, flags[flag].as<std::string>(), minimum);
  };
  auto list = [&](const char* flag, std::int64_t minimum) {
    return examples::parse_list_at_least(kProgram, flag, flags[flag].as<std::string>(), minimum);
  };
  config.slow_series_n = whole("n", 1);
  if (flags.count("ncores")) {
    config.ncores = counts(list("ncores", 1));
  } else {
    for (int p = 1; p <= cpus; ++p) config.ncores.push_back(p);
  }
  config.workers = static_cast<int>(whole("workers", 1));
  config.dispatch_items = list("dispatch-items", 1);
  config.dispatch_workers = counts(list("dispatch-workers", 1));
  config.dispatch_scaling_items = whole("dispatch-scaling-items", 1);
  config.cold_items = list("cold-items", 1);
  config.startup_workers = counts(list("startup-workers", 1));
  config.result_doubles = whole("result-doubles", 1);
  config.result_strings = whole("result-strings", 1);
  config.sleep_seconds =
      examples::parse_positive(kProgram, "sleep-seconds", flags["sleep-seconds"].as<std::string>());
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == bench::kExitAtOnce) return 0;  // spawn_and_reap's
  if (argc == 5 && std::string(argv[1]) == "--cold-child") {
    return bench::run_cold_child(argv[2], std::atoll(argv[3]), std::atoi(argv[4]));
  }
  benchmark::Initialize(&argc, argv);  // takes its own flags out of argv
  const bench::Config config = parse(argc, argv);
  bench::register_slow_series(config);
  bench::register_dispatch(config);
  bench::register_startup(config);
  bench::register_results(config);
  bench::register_cold_calls(config);
  bench::register_sleep_map(config);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
