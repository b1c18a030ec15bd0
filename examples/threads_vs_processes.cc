// The course's lesson in one table: the slow series on every backend and number of cores.
//
//   threads_vs_processes --ncores 1,2 --n 100000000
//
// Threads that share one interpreter-like lock (gil) are no faster than one core; free threads and
// processes scale. Each cell is the median wall time of --repeat runs, pool start-up included.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "examples/cli.h"
#include "examples/slow_series.h"
#include "pool/pool.h"

namespace po = boost::program_options;
using examples::DigitMethod;

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

template <class Pool>
double seconds_on_pool(int ncores, std::int64_t n, DigitMethod method, double expected) {
  const auto start = std::chrono::steady_clock::now();
  double sum = 0;
  {
    Pool workers(ncores);
    sum = examples::slow_series_sum(workers, n, method);
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  if (std::abs(sum - expected) > 1e-12 * std::abs(expected)) {
    std::fprintf(stderr, "threads_vs_processes: sum %.17g differs from serial %.17g\n", sum,
                 expected);
    std::exit(1);
  }
  return elapsed.count();
}

void print_table(const char* title, const std::vector<std::string>& backends,
                 const std::vector<std::int64_t>& ncores,
                 const std::map<std::string, std::vector<double>>& cells, const char* format) {
  std::printf("\n%s\n\n| backend \\ ncores |", title);
  for (auto cores : ncores) std::printf(" %lld |", static_cast<long long>(cores));
  std::printf("\n|---|");
  for (std::size_t i = 0; i < ncores.size(); ++i) std::printf("---|");
  std::printf("\n");
  for (const auto& backend : backends) {
    std::printf("| %s |", backend.c_str());
    for (double value : cells.at(backend)) {
      std::printf(" ");
      std::printf(format, value);
      std::printf(" |");
    }
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string program = "threads_vs_processes";
  po::options_description options("Options");
  options.add_options()("ncores", po::value<std::string>()->default_value("1,2,4"),
                        "comma-separated core counts")(
      "n", po::value<std::string>()->default_value("100000000"), "sum the terms k = 1..n")(
      "repeat", po::value<std::string>()->default_value("3"), "runs per cell; the median is shown")(
      "method", po::value<std::string>()->default_value("integer"), "integer or string");
  const auto flags =
      examples::parse_flags(argc, argv,
                            "Usage: threads_vs_processes [--ncores 1,2,4] [--n N] [--repeat R]\n"
                            "The slow series on processes, GIL threads and free threads",
                            options);
  const auto ncores =
      examples::parse_list_at_least(program, "ncores", flags["ncores"].as<std::string>(), 1);
  const std::int64_t n = examples::parse_at_least(program, "n", flags["n"].as<std::string>(), 1);
  const int repeat = static_cast<int>(
      examples::parse_at_least(program, "repeat", flags["repeat"].as<std::string>(), 1));
  const std::string method_name = flags["method"].as<std::string>();
  const auto named_method = examples::digit_method_named(method_name);
  if (!named_method) {
    examples::usage_error(program, "--method must be integer or string, got '" + method_name + "'");
  }
  const DigitMethod method = *named_method;
  for (auto cores : ncores) {
    if (cores > 4096) examples::usage_error(program, "--ncores values must be at most 4096");
  }

  std::vector<double> serial_runs;
  double expected = 0;
  for (int r = 0; r < repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    expected = examples::slow_series_partial_sum({1, n}, method);
    serial_runs.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  const double serial = median(serial_runs);

  const std::vector<std::string> backends = {"process", "gil", "free"};
  std::map<std::string, std::vector<double>> seconds, speedup, efficiency;
  try {
    for (auto cores : ncores) {
      const int c = static_cast<int>(cores);
      for (const auto& backend : backends) {
        std::vector<double> runs;
        for (int r = 0; r < repeat; ++r) {
          // Thread pools are destroyed before the next process pool forks.
          if (backend == "process")
            runs.push_back(seconds_on_pool<pool::ProcessPool>(c, n, method, expected));
          if (backend == "gil")
            runs.push_back(seconds_on_pool<pool::GilThreadPool>(c, n, method, expected));
          if (backend == "free")
            runs.push_back(seconds_on_pool<pool::FreeThreadPool>(c, n, method, expected));
        }
        const double t = median(runs);
        seconds[backend].push_back(t);
        speedup[backend].push_back(serial / t);
        efficiency[backend].push_back(serial / t / c);
      }
    }
  } catch (const pool::Interrupted&) {
    // Ctrl-C: the pool stopped its workers; no partial result is printed.
    return examples::report_interrupted(program);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), error.what());
    return 1;
  }

  std::printf("slow series, n = %lld, %s digits, median of %d runs; serial: %.3f s, sum = %s\n",
              static_cast<long long>(n), method_name.c_str(), repeat, serial,
              examples::python_repr(expected).c_str());
  print_table("Wall time (s)", backends, ncores, seconds, "%.3f");
  print_table("Speedup (serial / parallel)", backends, ncores, speedup, "%.2f");
  print_table("Parallel efficiency (speedup / ncores)", backends, ncores, efficiency, "%.2f");
  return 0;
}
