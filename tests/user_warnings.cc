// A user's file: pool/pool.h and the common calls on every pool. user_warnings_test.sh compiles
// it with -Wall -Wextra -Wpedantic -Werror under GCC and Clang, so that the headers never make a
// user's strict build fail.
#include <chrono>
#include <cmath>
#include <functional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "pool/pool.h"

namespace {

long square(long x) { return x * x; }

template <pool::Pool P>
double every_call(P& workers) {
  const std::vector<long> items{1, 2, 3, 4};
  double total = 0;
  for (long x : workers.map(&square, items)) total += static_cast<double>(x);
  for (double x : workers.map([](int i) { return std::sqrt(i); }, pool::range(0, 100), 8)) {
    total += x;
  }
  auto async = workers.map_async([](long x) { return x + 1; }, items);
  if (async.wait(std::chrono::seconds(10)) && async.successful()) total += async.get().front();
  total += workers.apply([](long a, long b) { return a * b; }, 6L, 7L);
  workers.apply([] {});
  total += workers.apply_async(&square, 3L).get(std::chrono::seconds(10));
  const std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}};
  for (int sum : workers.starmap([](int a, int b) { return a + b; }, pairs)) total += sum;
  for (long x : workers.imap(&square, items)) total += static_cast<double>(x);
  for (auto [index, x] : workers.imap_unordered(&square, pool::range(0L, 10L))) {
    total += static_cast<double>(index) + static_cast<double>(x);
  }
  total += workers.map_reduce([](long x) { return 1.0 / static_cast<double>(x); },
                              pool::range(1L, 1000L), std::plus<>(), 0.0);
  return total;
}

}  // namespace

int main() {
  // Options named in part, as users write them (-Wmissing-field-initializers must not fire).
  pool::ProcessPool processes(2, {.maxtasksperchild = 100});
  pool::GilThreadPool gil(2);
  pool::FreeThreadPool threads(2, {.progress = false});
  const double total = every_call(processes) + every_call(gil) + every_call(threads);
  processes.close();
  processes.join();
  return total > 0 ? 0 : 1;
}
