#include "pool/detail/mpi/call.h"

#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>

#include "pool/detail/function_identity.h"
#include "pool/detail/trace_buffer.h"

namespace pool::detail {

MpiCall::MpiCall(std::uint64_t runner, const std::byte* state, std::size_t size) {
  try {
    runner_ = make_runner<MpiRunner>(runner, state, size);
  } catch (const std::exception& error) {
    error_ = error.what();
  }
}

std::optional<TaskFailure> MpiCall::run(const EncodedChunk& chunk, std::string& out) {
  std::int64_t item = chunk.first_item;
  try {
    if (!runner_) throw std::logic_error(error_);
    runner_->run(chunk, out, item);
  } catch (...) {
    return TaskFailure::capture(item, std::current_exception());
  }
  return std::nullopt;
}

std::optional<TaskFailure> MpiCall::run(const EncodedChunk& chunk, std::string& out,
                                        MpiRunTimes& times) {
  std::int64_t item = chunk.first_item;
  try {
    if (!runner_) throw std::logic_error(error_);
    runner_->run_traced(chunk, out, item, times);
  } catch (...) {
    // A task that threw ends the run; one that failed before any task ran leaves no run.
    if (times.begin_ns != 0 && times.end_ns == 0) times.end_ns = monotonic_now_ns();
    return TaskFailure::capture(item, std::current_exception());
  }
  return std::nullopt;
}

}  // namespace pool::detail
