#include "pool/detail/stack_trace.h"

#define BOOST_STACKTRACE_LINK  // the compiled libboost_stacktrace_backtrace
#include <boost/stacktrace/frame.hpp>

namespace pool::detail {

std::string describe_stack(void* const* frames, std::size_t count, bool first_is_exact) {
  std::string text;
  int shown = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const bool exact = i == 0 && first_is_exact;
    const boost::stacktrace::frame frame(static_cast<const char*>(frames[i]) - (exact ? 0 : 1));
    std::string line = boost::stacktrace::to_string(frame);
    // The libc start-up frames below main say nothing about the failure.
    if (line.rfind("__libc_start", 0) == 0 || line.rfind("_start ", 0) == 0) break;
    text += "#" + std::to_string(shown++) + " " + line + "\n";
  }
  return text;
}

}  // namespace pool::detail
