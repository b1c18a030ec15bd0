// Including the process pool costs its users no Boost.Asio: the event loop's io_context, sockets
// and signal sets stay behind the pool's .cc files. This file fails to compile when any Asio
// header comes through "pool/process_pool.h" again.
#include "pool/process_pool.h"

#if defined(BOOST_ASIO_DETAIL_CONFIG_HPP) || defined(BOOST_ASIO_IO_CONTEXT_HPP) || \
    defined(BOOST_ASIO_SIGNAL_SET_HPP) || defined(BOOST_ASIO_POSIX_STREAM_DESCRIPTOR_HPP)
#error "pool/process_pool.h includes Boost.Asio; keep it in the process backend's .cc-side headers"
#endif

#include <vector>

#include "tests/leak_check.h"

namespace {

using HeaderCost = pool::testing::NoLeftoversTest;

int twice(int x) { return 2 * x; }

TEST_F(HeaderCost, ProcessPoolWithoutAsioInItsHeaderStillMaps) {
  pool::ProcessPool workers(2);
  EXPECT_EQ(workers.map(twice, std::vector<int>{1, 2, 3}), (std::vector<int>{2, 4, 6}));
}

}  // namespace
