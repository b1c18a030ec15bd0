// The course's slow series (sum.py), on a pool of worker processes or threads:
//
//   slow_series --ncores 2
//   running with 2 processes over [(1, 50000000), (50000001, 100000000)]
//   Time in seconds: 0.281
//   sum = 13.277605949855722
//
// --backend gil runs it on threads that share one interpreter-like lock (no faster than serial),
// --backend free on plain threads, --backend serial in one loop.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "examples/cli.h"
#include "examples/slow_series.h"
#include "pool/pool.h"

namespace po = boost::program_options;
using examples::DigitMethod;

namespace {

template <class Pool>
double run_on(const char* workers_are, int ncores, std::int64_t n, DigitMethod method) {
  std::cout << "running with " << ncores << " " << workers_are << " over "
            << examples::format_intervals(examples::partition(n, ncores)) << std::endl;
  Pool workers(ncores);
  return examples::slow_series_sum(workers, n, method);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string program = "slow_series";
  po::options_description options("Options");
  options.add_options()(
      "ncores", po::value<std::string>()->default_value(std::to_string(pool::available_cpus())),
      "workers (default: the CPUs this process may use)")(
      "n", po::value<std::string>()->default_value("100000000"), "sum the terms k = 1..n")(
      "method", po::value<std::string>()->default_value("integer"),
      "digit test: integer (a digit loop) or string (to_string + find, as in Python)")(
      "backend", po::value<std::string>()->default_value("process"),
      "process (worker processes), gil (threads sharing one lock, like CPython), "
      "free (free threads, like Python 3.13t) or serial");
  const auto flags =
      examples::parse_flags(argc, argv,
                            "Usage: slow_series [--ncores N] [--n N] [--method integer|string] "
                            "[--backend process|gil|free|serial]\n"
                            "Sum of 1/k for k = 1..n, skipping k whose digits contain a 9",
                            options);
  const int ncores = static_cast<int>(
      examples::parse_at_least(program, "ncores", flags["ncores"].as<std::string>(), 1));
  const std::int64_t n = examples::parse_at_least(program, "n", flags["n"].as<std::string>(), 1);
  const std::string method_name = flags["method"].as<std::string>();
  const std::string backend = flags["backend"].as<std::string>();
  const auto named_method = examples::digit_method_named(method_name);
  if (!named_method) {
    examples::usage_error(program, "--method must be integer or string, got '" + method_name + "'");
  }
  const DigitMethod method = *named_method;
  if (backend != "process" && backend != "gil" && backend != "free" && backend != "serial") {
    examples::usage_error(program,
                          "--backend must be process, gil, free or serial, got '" + backend + "'");
  }
  if (ncores > 4096) examples::usage_error(program, "--ncores must be at most 4096");

  const auto start = std::chrono::steady_clock::now();
  double sum = 0.0;
  try {
    if (backend == "serial") {
      std::cout << "running serially over " << examples::format_intervals({{1, n}}) << "\n";
      sum = examples::slow_series_partial_sum({1, n}, method);
    } else if (backend == "process") {
      sum = run_on<pool::ProcessPool>("processes", ncores, n, method);
    } else if (backend == "gil") {
      sum = run_on<pool::GilThreadPool>("threads", ncores, n, method);
    } else {
      sum = run_on<pool::FreeThreadPool>("threads", ncores, n, method);
    }
  } catch (const pool::Interrupted&) {
    // Ctrl-C: the pool stopped its workers; no partial result is printed.
    return examples::report_interrupted(program);
  } catch (const std::exception& error) {
    std::cerr << program << ": " << error.what() << "\n";
    return 1;
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  std::printf("Time in seconds: %.3f\n", elapsed.count());
  std::printf("sum = %s\n", examples::python_repr(sum).c_str());
  return 0;
}
