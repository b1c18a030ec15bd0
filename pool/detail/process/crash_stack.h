// A worker process's own crash (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT): a handler, running on
// its own stack so that a stack overflow is caught too, writes the raw return addresses into the
// worker's slot in shared memory (Boost.Stacktrace's safe_dump_to, meant for signal handlers) and
// lets the signal kill the worker as before. The parent, whose code lies at the same addresses (a
// fork) or to which they are translated (code_map.h), symbolizes them into
// WorkerDied::stack_trace(). Nothing is paid until a crash.
#ifndef POOL_DETAIL_PROCESS_CRASH_STACK_H_
#define POOL_DETAIL_PROCESS_CRASH_STACK_H_

#include <string>

#include "pool/detail/process/code_map.h"
#include "pool/detail/process/protocol.h"

namespace pool::detail {

// In the worker, once: handlers for the crash signals whose action is still the default. With a
// code map (a worker that is not the parent's fork), the addresses are written as the parent's.
void record_crash_stacks(WorkerSlot* slot, const CodeMap* code_map = nullptr);

// In the parent, after the worker in `slot` was killed by `signal`: the crash's stack, or empty;
// clears the slot for the worker's replacement.
std::string take_crash_stack(WorkerSlot& slot, int signal);

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_CRASH_STACK_H_
