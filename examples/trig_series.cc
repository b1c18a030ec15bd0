// The course's trigonometric series: the sum of cos(i)/i for i = 1..n, which tends to
// -ln(2 sin(1/2)):
//
//   trig_series --ncores 2
//   running with 2 processes: sum of cos(i)/i over range(1, 100000001)
//   Time in seconds: 1.611
//   sum = 0.0420195125352171
//   exact = 0.04201950582536895
//   approximate / exact = 1.0000001596841281
#include <cmath>
#include <cstdint>
#include <functional>

#include "examples/example.h"
#include "pool/pool.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  examples::Example example("trig_series",
                            "Usage: trig_series [--n N] [common options]\n"
                            "Sum of cos(i)/i for i = 1..n, against its limit -ln(2 sin(1/2))");
  example.options().add_options()("n", po::value<std::string>()->default_value("100000000"),
                                  "sum the terms i = 1..n")(
      "fail-at", po::value<std::string>()->default_value("0"),
      "term I throws std::domain_error: how a task's failure is reported (0: none)")(
      "crash-at", po::value<std::string>()->default_value("0"),
      "term I writes through a null pointer: how a crashing worker is reported (0: none)")(
      "report-every", po::value<std::string>()->default_value("0"),
      "every K-th term prints a line from its task (with --capture-output: labelled with its "
      "worker and task; 0: none)");
  example.parse(argc, argv);
  const std::int64_t n = example.whole_number("n", 1);
  const std::int64_t fail_at = example.whole_number("fail-at", 0);
  const std::int64_t crash_at = example.whole_number("crash-at", 0);
  const std::int64_t report_every = example.whole_number("report-every", 0);
  const double exact = -std::log(2 * std::sin(0.5));

  return example.run([&](auto& workers) {
    example.out() << example.running_on() << ": sum of cos(i)/i over range(1, " << n + 1 << ")"
                  << std::endl;
    // map_reduce over pool::range rather than one interval per worker: a chunk travels as its two
    // bounds, the default chunks (4 per worker) even out uneven workers, and every item boundary
    // is a GIL checkpoint, so the term needs no checkpoint loop of its own.
    const double sum = workers.map_reduce(
        [fail_at, crash_at, report_every](std::int64_t i) {
          if (i == fail_at || i == crash_at) [[unlikely]] {
            examples::fail_on_purpose(i, i == crash_at);
          }
          const double term = std::cos(static_cast<double>(i)) / static_cast<double>(i);
          if (report_every != 0 && i % report_every == 0) [[unlikely]] {
            pool::print("term " + std::to_string(i) + " = " + examples::python_repr(term));
          }
          return term;
        },
        pool::range(std::int64_t{1}, n + 1), std::plus<>(), 0.0);
    examples::Outcome outcome(n, sum);
    outcome.lines = {"sum = " + examples::python_repr(sum),
                     "exact = " + examples::python_repr(exact),
                     "approximate / exact = " + examples::python_repr(sum / exact)};
    outcome.fields = {{"exact", exact}};
    return outcome;
  });
}
