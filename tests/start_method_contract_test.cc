// The pool contract (tests/pool_contract.h) on ProcessPools whose workers are not forks of the
// test: Start::spawn and Start::forkserver (Start::fork is ProcessPool in pool_contract_test).
// Each test is followed by the no-leftover-process and no-shared-memory check.
#include "tests/pool_contract.h"
#include "tests/pool_types.h"

namespace pool::testing {
namespace {

INSTANTIATE_TYPED_TEST_SUITE_P(Unforked, PoolContract, UnforkedProcessPools, PoolName);

}  // namespace
}  // namespace pool::testing
