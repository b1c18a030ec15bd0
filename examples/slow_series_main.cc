// The course's slow series (sum.py), on a pool of worker processes or threads:
//
//   slow_series --ncores 2
//   running with 2 processes over [(1, 50000000), (50000001, 100000000)]
//   Time in seconds: 0.281
//   sum = 13.277605949855722
//
// --strategy picks how the work is split: intervals (one partial sum per worker, as sum.py),
// map (every term as its own item, then a serial sum of the 10^8-element list, the course's slow
// version) or map_reduce (every term as an item, folded in the workers), both with --chunksize
// terms per task (default: Python's rule). --backend gil runs it on threads that share one
// interpreter-like lock (no faster than serial), --backend free on plain threads, --backend serial
// in one loop.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "examples/example.h"
#include "examples/slow_series.h"
#include "pool/pool.h"

namespace po = boost::program_options;
using examples::DigitMethod;

namespace {

template <class Pool>
double sum_by(const std::string& strategy, Pool& workers, std::int64_t n, DigitMethod method,
              std::size_t chunksize, std::ostream& out, const std::string& running_on) {
  if (strategy == "intervals") {
    out << running_on << " over "
        << examples::format_intervals(examples::partition(n, workers.size())) << std::endl;
    return examples::slow_series_sum(workers, n, method);
  }
  out << running_on << ", " << strategy << " over range(1, " << n + 1 << ")" << std::endl;
  const auto terms = pool::range(std::int64_t{1}, n + 1);
  if (strategy == "map") {
    const std::vector<double> values =
        workers.map(examples::SlowSeriesTerm{method}, terms, chunksize);
    double sum = 0.0;
    for (double value : values) sum += value;
    return sum;
  }
  return workers.map_reduce(examples::SlowSeriesTerm{method}, terms, std::plus<>(), 0.0, chunksize);
}

}  // namespace

int main(int argc, char** argv) {
  examples::Example example("slow_series",
                            "Usage: slow_series [--n N] [--method integer|string] "
                            "[--strategy intervals|map|map_reduce] [common options]\n"
                            "Sum of 1/k for k = 1..n, skipping k whose digits contain a 9");
  example.options().add_options()("n", po::value<std::string>()->default_value("100000000"),
                                  "sum the terms k = 1..n")(
      "method", po::value<std::string>()->default_value("integer"),
      "digit test: integer (a digit loop) or string (to_string + find, as in Python)")(
      "strategy", po::value<std::string>()->default_value("intervals"),
      "intervals (one partial sum per worker), map (a list of every term, summed serially) or "
      "map_reduce (every term folded in the workers)")(
      "chunksize", po::value<std::string>()->default_value("0"),
      "terms per task for map and map_reduce (0: Python's rule, len / (4 x workers))");
  example.parse(argc, argv);
  const std::int64_t n = example.whole_number("n", 1);
  const std::string method_name = example.text("method");
  const auto method = examples::digit_method_named(method_name);
  if (!method) example.usage_error("--method must be integer or string, got '" + method_name + "'");
  const std::string strategy = example.text("strategy");
  if (strategy != "intervals" && strategy != "map" && strategy != "map_reduce") {
    example.usage_error("--strategy must be intervals, map or map_reduce, got '" + strategy + "'");
  }
  const auto chunksize = static_cast<std::size_t>(example.whole_number("chunksize", 0));
  if (chunksize != 0 && strategy == "intervals") {
    example.usage_error("--chunksize applies to --strategy map and map_reduce");
  }

  return example.run([&](auto& workers) {
    const double sum =
        sum_by(strategy, workers, n, *method, chunksize, example.out(), example.running_on());
    examples::Outcome outcome(n, sum);
    outcome.lines = {"sum = " + examples::python_repr(sum)};
    outcome.fields = {{"strategy", strategy}, {"method", method_name}};
    return outcome;
  });
}
