// One MpiPool call's runner on a rank, or why there is none: then every chunk of the call fails
// with that reason, on whichever rank runs it, and the pool stays usable.
#ifndef POOL_DETAIL_MPI_CALL_H_
#define POOL_DETAIL_MPI_CALL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "pool/detail/mpi/runner.h"
#include "pool/detail/task_failure.h"

namespace pool::detail {

class MpiCall {
 public:
  // runner: the id rank 0 sent; state: the call's encoded task function (and op and init).
  MpiCall(std::uint64_t runner, const std::byte* state, std::size_t size);
  // Runs one chunk, appending its results to `out`; the failure, when a task threw.
  std::optional<TaskFailure> run(const EncodedChunk& chunk, std::string& out);
  // The same, traced: `times` says when its tasks ran; a task that threw ended the run.
  std::optional<TaskFailure> run(const EncodedChunk& chunk, std::string& out, MpiRunTimes& times);

 private:
  std::unique_ptr<MpiRunner> runner_;
  std::string error_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_MPI_CALL_H_
