// What a rank runs an MpiPool call's chunks through: the call's runner, found by the id rank 0
// sends with the call's state (see pool/detail/function_identity.h), and a chunk as it sees one.
#ifndef POOL_DETAIL_MPI_RUNNER_H_
#define POOL_DETAIL_MPI_RUNNER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "pool/detail/chunk_items.h"
#include "pool/detail/function_identity.h"

namespace pool::detail {

// When a traced chunk's tasks ran, on the running rank's CLOCK_MONOTONIC; 0: not reached.
struct MpiRunTimes {
  std::int64_t begin_ns = 0;  // its first task began (its items already decoded)
  std::int64_t end_ns = 0;    // its last task ended (its results not yet encoded)
};

// Runs the chunks of one call; built once per call and rank from the call's encoded state.
class MpiRunner : public Runner {
 public:
  // Appends the chunk's results (or its folded value) to `out`. `item` follows the item being
  // run, so that a throw names its task.
  virtual void run(const EncodedChunk& chunk, std::string& out, std::int64_t& item) = 0;
  // The same, traced: decodes every item before the first task and encodes the results after the
  // last, as a ProcessPool's traced worker does, so that both show as overhead in `times`.
  virtual void run_traced(const EncodedChunk& chunk, std::string& out, std::int64_t& item,
                          MpiRunTimes& times) = 0;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_MPI_RUNNER_H_
