// The course's NumExpr example: one elementwise expression over a large array,
//   r = sin(2 pi a)^2 + cos(2 pi a)^2,
// evaluated in chunks by the workers, reading and writing arrays in shared memory. Every element
// must be 1 within rounding:
//
//   elementwise --ncores 2
//   running with 2 processes: sin(2 pi a)^2 + cos(2 pi a)^2 on 100000000 elements, in chunks ...
//   Time in seconds: ...
//   max |r - 1| = 2.220446049250313e-16
//
// Only the expression is timed; filling a with random numbers and the check are not. On the process
// backend each worker also maps every page it touches for the first time, which threads never pay
// again after the fill; that cost is in the time, as it would be in Python with shared_memory.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>

#include "examples/example.h"
#include "examples/uniform_chunks.h"
#include "pool/pool.h"

namespace po = boost::program_options;

namespace {

// Each of sin, cos, the two squares and the sum may round by about an ulp.
constexpr double kTolerance = 8 * DBL_EPSILON;

}  // namespace

int main(int argc, char** argv) {
  examples::Example example("elementwise",
                            "Usage: elementwise [--n N] [--chunk N] [common options]\n"
                            "sin(2 pi a)^2 + cos(2 pi a)^2 over N random numbers, in chunks");
  example.options().add_options()("n", po::value<std::string>()->default_value("100000000"),
                                  "elements in the array a")(
      "chunk", po::value<std::string>()->default_value("1000000"), "elements per task");
  example.needs_shared_memory();
  example.parse(argc, argv);
  const std::int64_t n = example.whole_number("n", 1);
  const std::int64_t chunk = example.whole_number("chunk", 1);

  return example.run([&](auto& workers) {
    example.out() << example.running_on() << ": sin(2 pi a)^2 + cos(2 pi a)^2 on " << n
                  << " elements, in chunks of " << chunk << std::endl;
    const auto size = static_cast<std::size_t>(n);
    pool::SharedArray<double> a(size), r(size);
    const auto chunks = pool::range(std::int64_t{0}, (n + chunk - 1) / chunk);
    // The elements [first, first + count) of chunk k.
    const auto bounds = [n, chunk](std::int64_t k) {
      return std::pair<std::size_t, std::size_t>(k * chunk, std::min(chunk, n - k * chunk));
    };

    // The input, and a first write to every page of r: memory is only allocated when first
    // touched, and the timed expression should measure arithmetic, not page faults.
    workers.map(
        [bounds, a = a.span(), r = r.span()](std::int64_t k) {
          const auto [first, count] = bounds(k);
          examples::fill_uniform_chunk(a.subspan(first, count), static_cast<std::uint64_t>(k));
          std::fill_n(r.data() + first, count, 0.0);
          return 0;
        },
        chunks, 1);

    example.start_clock();
    workers.map(
        [bounds, a = a.span(), r = r.span()](std::int64_t k) {
          const auto [first, count] = bounds(k);
          const double* in = a.data() + first;
          double* out = r.data() + first;
          for (std::size_t i = 0; i < count; ++i) {
            const double x = 2 * std::numbers::pi * in[i];
            const double s = std::sin(x), c = std::cos(x);
            out[i] = s * s + c * c;
          }
          return 0;
        },
        chunks, 1);
    example.stop_clock();

    double max_deviation = 0, sum_a = 0;
    for (double value : r) max_deviation = std::max(max_deviation, std::abs(value - 1.0));
    for (double value : a) sum_a += value;
    examples::Outcome outcome(n, max_deviation);
    outcome.lines = {"max |r - 1| = " + examples::python_repr(max_deviation)};
    // The input's mean (about 0.5) pins the random numbers, which max |r - 1| hardly depends on.
    outcome.fields = {{"chunk", chunk}, {"tolerance", kTolerance}, {"mean_a", sum_a / n}};
    if (max_deviation > kTolerance) {
      outcome.failure = "an element differs from 1 by more than " +
                        examples::python_repr(kTolerance) +
                        " (max |r - 1| = " + examples::python_repr(max_deviation) + ")";
    }
    return outcome;
  });
}
