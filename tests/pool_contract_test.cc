// The pool contract (tests/pool_contract.h) on the pools of one machine: ProcessPool,
// GilThreadPool and FreeThreadPool, each test followed by the no-leftover-process and
// no-shared-memory check. MpiPool runs the same suite under mpirun (tests/mpi_pool_test.cc).
#include "tests/pool_contract.h"

#include "tests/pool_types.h"

namespace pool::testing {
namespace {

INSTANTIATE_TYPED_TEST_SUITE_P(Local, PoolContract, AllPools, PoolName);

}  // namespace
}  // namespace pool::testing
