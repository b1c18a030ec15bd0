// A worker process's side of the pool: the loop a freshly forked worker runs until its parent
// closes the socket. It takes chunks from the jobs in shared memory (WorkerContext), sleeps on its
// socket when none are left, maps the segments the parent hands over, and runs the initializer.
#ifndef POOL_DETAIL_PROCESS_WORKER_MAIN_H_
#define POOL_DETAIL_PROCESS_WORKER_MAIN_H_

#include <cstddef>
#include <cstdint>
#include <functional>

#include "pool/cpus.h"
#include "pool/detail/process/code_map.h"
#include "pool/detail/process/protocol.h"
#include "pool/detail/process/shared_segment.h"
#include "pool/detail/trace_buffer.h"

namespace pool::detail {

// What a worker needs from its pool: pointers into shared memory, and into the worker's copy of
// the parent's memory (a fork) or what the pool sent it (bootstrap.h).
struct WorkerSetup {
  ControlBlock* control = nullptr;
  std::uint32_t index = 0;  // the worker's slot
  int fd = -1;              // the worker's end of its socket
  std::byte* arena = nullptr;
  SharedSegment* results = nullptr;  // its result buffer; replaced when it must grow
  const std::function<void()>* initializer = nullptr;  // an empty function: none
  const CpuPinning* pinning = nullptr;
  TraceBuffer* trace = nullptr;  // null: the pool is not traced
  // When its start-up began: the pool's start for the first workers, the fork for a replacement.
  std::int64_t startup_ns = 0;
  // A worker that is not the pool's fork: the pool's code addresses, translated (code_map.h).
  const CodeMap* code_map = nullptr;
};

// Serves until EOF on the socket or its maxtasksperchild, then ends the process with _exit(0);
// _exit(3) when the parent sends a malformed message, _exit(70) when anything throws (the parent
// reports a dead worker), and _exit(0) after an initializer failure it recorded in its slot.
[[noreturn]] void worker_main(const WorkerSetup& setup);

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_WORKER_MAIN_H_
