// capture_output: every line a worker writes reaches the parent's stream whole, prefixed with the
// worker and the task ("[worker 1 | task 17] converged after 12 steps").
//
// Process workers: stdio's stdout and stderr become line writers (fopencookie), and std::cout,
// std::cerr and std::clog write through them; complete lines go to the original descriptor in one
// write(2), under a lock the workers share, so two workers' lines never mix, whatever their length.
// A worker writing with write(2) on fd 1 or 2 itself bypasses them (its bytes pass unprefixed).
// Thread pools: threads share the process's streams, so a task prints through pool::print
// (pool/print.h), which prefixes and writes each call's lines at once.
#ifndef POOL_DETAIL_OUTPUT_CAPTURE_H_
#define POOL_DETAIL_OUTPUT_CAPTURE_H_

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "pool/detail/trace_buffer.h"

namespace pool::detail {

// Who is writing, for the prefix. Set in pool workers that capture their output.
struct OutputLabel {
  int worker = -1;                                  // -1: not a capturing worker (no prefix)
  std::int64_t task = -1;                           // a thread pool's current item
  const std::atomic<std::int64_t>* item = nullptr;  // a worker process's current item
};
inline thread_local OutputLabel t_output_label;
// The worker's trace buffer when its pool is traced: captured lines become instant events.
inline thread_local TraceBuffer* t_output_trace = nullptr;

// Each line of `lines` (the last one's newline may be missing) prefixed "[worker 1 | task 17] "
// ("[worker 1] " between tasks, nothing outside a capturing worker) and ended by a newline; the
// lines are also recorded in t_output_trace when it is set.
std::string labelled_lines(std::string_view lines);

// Makes `lock` (in memory the workers share) a process-shared, robust mutex.
void init_output_lock(pthread_mutex_t* lock);

// In a worker process: captures stdio and iostreams as described above. `lock` is shared by all
// the pool's workers.
void capture_process_output(int worker, const std::atomic<std::int64_t>* item,
                            pthread_mutex_t* lock);
// Writes out a last line left without its newline (before the worker exits).
void flush_captured_output();

}  // namespace pool::detail

#endif  // POOL_DETAIL_OUTPUT_CAPTURE_H_
