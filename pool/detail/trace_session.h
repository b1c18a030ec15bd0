// A pool's side of tracing: one TraceBuffer per worker, laid out in memory the pool provides
// (shared memory for processes, so that forked workers record where the parent reads), and the
// pool's own start-up and shutdown. finish() reads every buffer into the pool::Trace once the
// workers stopped.
#ifndef POOL_DETAIL_TRACE_SESSION_H_
#define POOL_DETAIL_TRACE_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "pool/detail/trace_buffer.h"
#include "pool/trace.h"

namespace pool::detail {

class TraceSession {
 public:
  // Bytes of memory a pool of `workers` needs for `trace`.
  static std::size_t bytes_for(const Trace& trace, int workers);

  // Claims `trace` for this pool (std::logic_error if another pool used it). `memory`: bytes_for()
  // zeroed, page-aligned bytes that outlive the session, or null to allocate them here.
  TraceSession(std::shared_ptr<Trace> trace, const char* backend, int workers,
               std::int64_t start_ns, void* memory = nullptr);

  std::int64_t start_ns() const { return start_ns_; }
  TraceBuffer* buffer(int worker) { return &buffers_[static_cast<std::size_t>(worker)]; }

  // The pool begins to stop its workers (the first call counts).
  void shutdown_begins();
  // The pool saw worker `worker` end at `ns` (reaped): used when the worker could not say so.
  void worker_ended(int worker, std::int64_t ns);
  // Reads the buffers into the trace; the first call counts. The workers must have stopped.
  void finish();

 private:
  std::shared_ptr<Trace> trace_;
  std::int64_t start_ns_;
  std::int64_t shutdown_ns_ = 0;
  bool finished_ = false;
  struct Free {
    void operator()(void* memory) const { std::free(memory); }
  };
  std::unique_ptr<void, Free> own_memory_;
  std::vector<TraceBuffer> buffers_;
  std::vector<std::int64_t> ended_ns_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_TRACE_SESSION_H_
