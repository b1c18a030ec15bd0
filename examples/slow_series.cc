#include "examples/slow_series.h"

#include <algorithm>

#include "pool/gil.h"

namespace examples {
namespace {

bool contains_nine(std::int64_t k) {
  for (; k > 0; k /= 10) {
    if (k % 10 == 9) return true;
  }
  return false;
}

}  // namespace

double slow_series_partial_sum(Interval interval, DigitMethod method) {
  // A GIL pool switches threads only at checkpoints, like CPython between bytecodes.
  constexpr std::int64_t kCheckpointEvery = 4096;
  double sum = 0.0;
  for (std::int64_t block = interval.first; block <= interval.second; block += kCheckpointEvery) {
    const std::int64_t last = std::min(interval.second, block + kCheckpointEvery - 1);
    for (std::int64_t k = block; k <= last; ++k) {
      const bool skip = method == DigitMethod::kInteger
                            ? contains_nine(k)
                            : std::to_string(k).find('9') != std::string::npos;
      if (!skip) sum += 1.0 / static_cast<double>(k);
    }
    pool::gil::checkpoint();
  }
  return sum;
}

std::optional<DigitMethod> digit_method_named(const std::string& name) {
  if (name == "integer") return DigitMethod::kInteger;
  if (name == "string") return DigitMethod::kString;
  return std::nullopt;
}

std::vector<Interval> partition(std::int64_t n, int parts) {
  std::vector<Interval> intervals;
  const std::int64_t size = n / parts;
  for (int i = 0; i < parts; ++i) intervals.emplace_back(i * size + 1, (i + 1) * size);
  intervals.back().second = n;
  return intervals;
}

std::string format_intervals(const std::vector<Interval>& intervals) {
  std::string text = "[";
  for (std::size_t i = 0; i < intervals.size(); ++i) {
    if (i > 0) text += ", ";
    text +=
        "(" + std::to_string(intervals[i].first) + ", " + std::to_string(intervals[i].second) + ")";
  }
  return text + "]";
}

}  // namespace examples
