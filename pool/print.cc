#include "pool/print.h"

#include <cstdio>
#include <string>

#include "pool/detail/output_capture.h"

namespace pool {

void print(std::string_view text) {
  const detail::OutputLabel& label = detail::t_output_label;
  std::string out;
  if (label.worker >= 0 && label.item == nullptr) {
    // A thread pool's thread: each line labelled here.
    const std::string prefix = detail::output_prefix();
    detail::trace_lines(text.empty() || text.back() != '\n' ? std::string(text) + '\n'
                                                            : std::string(text));
    std::size_t from = 0;
    while (from < text.size()) {
      const std::size_t end = std::min(text.find('\n', from), text.size());
      out += prefix;
      out.append(text.substr(from, end - from));
      out.push_back('\n');
      from = end + 1;
    }
  } else {
    // Elsewhere as is; a capturing worker process's stdout labels the lines itself.
    out.assign(text);
    if (out.empty() || out.back() != '\n') out.push_back('\n');
  }
  // One stdio call holds the stream's lock for the whole text.
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

}  // namespace pool
