// The course's slow series: the sum of 1/k for k = 1..n, skipping every k whose decimal digits
// contain a 9, split into intervals as the course's sum.py does.
#ifndef EXAMPLES_SLOW_SERIES_H_
#define EXAMPLES_SLOW_SERIES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace examples {

// integer: a digit loop; string: std::to_string(k).find('9'), like the Python original.
enum class DigitMethod { kInteger, kString };

using Interval = std::pair<std::int64_t, std::int64_t>;  // inclusive bounds

// "integer" or "string"; nullopt for anything else.
std::optional<DigitMethod> digit_method_named(const std::string& name);

// The terms 1/k for k in [interval.first, interval.second], skipping k that contain a 9.
double slow_series_partial_sum(Interval interval, DigitMethod method);

// The course's partition: size = n / parts; (i*size+1, (i+1)*size), the last one extended to n.
std::vector<Interval> partition(std::int64_t n, int parts);

// "[(1, 50000000), (50000001, 100000000)]", as Python prints a list of tuples.
std::string format_intervals(const std::vector<Interval>& intervals);

// The task a pool maps over the intervals; trivially copyable, so it travels as its bytes.
struct PartialSum {
  DigitMethod method = DigitMethod::kInteger;
  double operator()(const Interval& interval) const {
    return slow_series_partial_sum(interval, method);
  }
};

// One term, 1/k or 0 when k contains a 9: the whole series is then one call,
//   workers.map_reduce(SlowSeriesTerm{method}, pool::range(1, n + 1), std::plus<>(), 0.0).
struct SlowSeriesTerm {
  DigitMethod method = DigitMethod::kInteger;
  double operator()(std::int64_t k) const { return slow_series_partial_sum({k, k}, method); }
};

// The course's parallel slow series on any pool: one partial sum per worker, added in order.
template <class Pool>
double slow_series_sum(Pool& workers, std::int64_t n, DigitMethod method) {
  const std::vector<double> partial_sums =
      workers.map(PartialSum{method}, partition(n, workers.size()));
  double sum = 0.0;
  for (double partial : partial_sums) sum += partial;
  return sum;
}

}  // namespace examples

#endif  // EXAMPLES_SLOW_SERIES_H_
