// A downstream program: a map and a map_reduce on worker processes, through the installed headers
// and library only. The CMake and pkg-config consumers both build it.
#include <cstdio>
#include <functional>

#include "pool/pool.h"

int main() {
  pool::ProcessPool workers(2);
  std::printf("map:");
  for (long square : workers.map([](long x) { return x * x; }, pool::range(0L, 10L))) {
    std::printf(" %ld", square);
  }
  const long sum = workers.map_reduce([](long x) { return x * x; }, pool::range(0L, 1001L),
                                      std::plus<>(), 0L);
  std::printf("\nmap_reduce: sum of squares 0..1000 = %ld\n", sum);
}
