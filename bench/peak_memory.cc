// Workload 6: peak resident memory of the parent and of the largest worker for one call, each in a
// fresh process so that nothing measured before counts:
//   peak_memory map_reduce N   the slow series as one map_reduce over range(1, N + 1)
//   peak_memory map N          map over range(0, N) returning N doubles
// Prints one JSON line; sizes in KiB. The parent's peak is its VmHWM (getrusage's would include the
// process that exec'd it); workers are forked while the parent is small, and their peak comes from
// getrusage(RUSAGE_CHILDREN) once the pool has reaped them all.
#include <sys/resource.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "examples/cli.h"
#include "examples/slow_series.h"
#include "pool/pool.h"

namespace {

constexpr char kProgram[] = "peak_memory";

long own_peak_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));  // "VmHWM:  1234 kB"
  }
  return -1;
}

long largest_child_peak_kib() {
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  return usage.ru_maxrss;  // KiB on Linux
}

struct Half {
  double operator()(std::int64_t i) const { return 0.5 * static_cast<double>(i); }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    examples::usage_error(kProgram, "usage: peak_memory map_reduce|map N");
  }
  const std::string workload = argv[1];
  const std::int64_t n = examples::parse_at_least(kProgram, "N", argv[2], 1);
  if (workload != "map_reduce" && workload != "map") {
    examples::usage_error(kProgram, "unknown workload '" + workload + "'");
  }
  const long before = own_peak_kib();
  double value = 0.0;
  std::int64_t result_bytes = 0;
  int workers = 0;
  {
    pool::ProcessPool workers_pool;
    workers = workers_pool.size();
    if (workload == "map_reduce") {
      value = workers_pool.map_reduce(examples::SlowSeriesTerm{},
                                      pool::range(std::int64_t{1}, n + 1), std::plus<>(), 0.0);
    } else {
      const std::vector<double> values = workers_pool.map(Half{}, pool::range(std::int64_t{0}, n));
      value = values.back();
      result_bytes = static_cast<std::int64_t>(values.size() * sizeof(double));
    }
  }
  std::cout << "{\"workload\": \"" << workload << "\", \"n\": " << n << ", \"workers\": " << workers
            << ", \"value\": " << examples::python_repr(value)
            << ", \"result_bytes\": " << result_bytes << ", \"parent_start_kib\": " << before
            << ", \"parent_peak_kib\": " << own_peak_kib()
            << ", \"worker_peak_kib\": " << largest_child_peak_kib() << "}" << std::endl;
  return 0;
}
