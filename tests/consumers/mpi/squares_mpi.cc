// A downstream program on the ranks of an MPI job: a map and a map_reduce on pool::MpiPool,
// through the installed headers and libpool_mpi only.
#include <cstdio>
#include <functional>

#include "pool/mpi_pool.h"
#include "pool/range.h"

int main() {
  pool::MpiPool::serve_workers();  // ranks 1..N-1 serve tasks from here and never return
  pool::MpiPool workers;
  std::printf("map:");
  for (long square : workers.map([](long x) { return x * x; }, pool::range(0L, 10L))) {
    std::printf(" %ld", square);
  }
  const long sum = workers.map_reduce([](long x) { return x * x; }, pool::range(0L, 1001L),
                                      std::plus<>(), 0L);
  std::printf("\nmap_reduce: sum of squares 0..1000 = %ld\n", sum);
}
