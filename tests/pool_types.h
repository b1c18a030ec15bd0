// The pools typed test suites run over, and readable names for them in test output
// ("EveryPool/GilThreadPool.MapKeepsOrder").
#ifndef TESTS_POOL_TYPES_H_
#define TESTS_POOL_TYPES_H_

#include <gtest/gtest.h>

#include <string>
#include <type_traits>

#include "pool/pool.h"

namespace pool {
class MpiPool;  // pool/mpi_pool.h, which needs MPI: only the MPI test binary includes it
}  // namespace pool

namespace pool::testing {

using AllPools = ::testing::Types<ProcessPool, GilThreadPool, FreeThreadPool>;
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
    } else {
      static_assert(std::is_same_v<P, MpiPool>, "a pool PoolName does not know");
      return "MpiPool";
    }
  }
};

}  // namespace pool::testing

#endif  // TESTS_POOL_TYPES_H_
