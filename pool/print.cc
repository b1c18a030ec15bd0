#include "pool/print.h"

#include <cstdio>
#include <string>

#include "pool/detail/output_capture.h"

namespace pool {

void print(std::string_view text) {
  const detail::OutputLabel& label = detail::t_output_label;
  std::string out;
  if (label.worker >= 0 && label.item == nullptr) {
    out = detail::labelled_lines(text);  // a thread pool's thread: labelled here
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
