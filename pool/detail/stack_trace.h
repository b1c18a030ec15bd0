// Stacks as raw return addresses, captured where they happen and turned into text (function, and
// file:line where debug info exists) by Boost.Stacktrace's libbacktrace backend.
#ifndef POOL_DETAIL_STACK_TRACE_H_
#define POOL_DETAIL_STACK_TRACE_H_

#include <cstddef>
#include <string>

namespace pool::detail {

inline constexpr std::size_t kMaxStackFrames = 48;

// One frame per line, "#0 function at file:line" (or "in module"); empty for no frames. A frame
// is a return address, the instruction after a call, so it is looked up one byte earlier (a call
// to a function that never returns, abort(), may be a function's last instruction); the first
// frame is looked up as it is when it is the instruction a signal interrupted.
std::string describe_stack(void* const* frames, std::size_t count, bool first_is_exact = false);

}  // namespace pool::detail

#endif  // POOL_DETAIL_STACK_TRACE_H_
