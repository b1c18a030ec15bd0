// The pools typed test suites run over, and readable names for them in test output
// ("EveryPool/GilThreadPool.MapKeepsOrder").
#ifndef TESTS_POOL_TYPES_H_
#define TESTS_POOL_TYPES_H_

#include <gtest/gtest.h>

#include <string>
#include <type_traits>
#include <utility>

#include "pool/pool.h"

namespace pool {
class MpiPool;  // pool/mpi_pool.h, which needs MPI: only the MPI test binary includes it
}  // namespace pool

namespace pool::testing {

// A ProcessPool whose workers are started by `kStart` (pool/start_method.h), whatever the options
// say: the typed suites run over each start method as over a pool of its own.
template <Start kStart>
class StartedProcessPool : public ProcessPool {
 public:
  StartedProcessPool() : ProcessPool(available_cpus(), with_start({})) {}
  explicit StartedProcessPool(int workers, ProcessPoolOptions options = {})
      : ProcessPool(workers, with_start(std::move(options))) {}

 private:
  static ProcessPoolOptions with_start(ProcessPoolOptions options) {
    options.start = kStart;
    return options;
  }
};
using SpawnProcessPool = StartedProcessPool<Start::spawn>;
using ForkserverProcessPool = StartedProcessPool<Start::forkserver>;

using AllPools = ::testing::Types<ProcessPool, GilThreadPool, FreeThreadPool>;
using UnforkedProcessPools = ::testing::Types<SpawnProcessPool, ForkserverProcessPool>;
// Every pool of one machine, ProcessPool by each start method.
using EveryLocalPool = ::testing::Types<ProcessPool, GilThreadPool, FreeThreadPool,
                                        SpawnProcessPool, ForkserverProcessPool>;
using ThreadPools = ::testing::Types<GilThreadPool, FreeThreadPool>;

struct PoolName {
  template <class P>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<P, ProcessPool>) {
      return "ProcessPool";
    } else if constexpr (std::is_same_v<P, GilThreadPool>) {
      return "GilThreadPool";
    } else if constexpr (std::is_same_v<P, FreeThreadPool>) {
      return "FreeThreadPool";
    } else if constexpr (std::is_same_v<P, SpawnProcessPool>) {
      return "SpawnProcessPool";
    } else if constexpr (std::is_same_v<P, ForkserverProcessPool>) {
      return "ForkserverProcessPool";
    } else {
      static_assert(std::is_same_v<P, MpiPool>, "a pool PoolName does not know");
      return "MpiPool";
    }
  }
};

}  // namespace pool::testing

#endif  // TESTS_POOL_TYPES_H_
