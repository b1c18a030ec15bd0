// pool::print(text): a task's line of output, whole and labelled when the pool captures output.
//
//   workers.map([](int step) { pool::print("converged after " + std::to_string(step) + " steps");
//                              return step; }, pool::range(0, 8));
//   // with {.capture_output = true}: "[worker 1 | task 5] converged after 5 steps"
//
// Writes `text` (a newline is added when it lacks one) to stdout in one piece: lines from two
// threads or processes never mix. In a worker of a pool with capture_output (thread or process),
// each line is prefixed "[worker i | task k] "; elsewhere it is written as is. On a ProcessPool
// that captures output, plain printf and std::cout are prefixed too; on a thread pool, whose
// threads share the process's streams, pool::print is the way to label a line.
#ifndef POOL_PRINT_H_
#define POOL_PRINT_H_

#include <string_view>

namespace pool {

void print(std::string_view text);

}  // namespace pool

#endif  // POOL_PRINT_H_
