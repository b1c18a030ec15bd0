#include "pool/start_method.h"

#include "pool/detail/process/forkserver.h"

namespace pool {

std::string_view to_string(Start start) {
  switch (start) {
    case Start::fork:
      return "fork";
    case Start::spawn:
      return "spawn";
    case Start::forkserver:
      return "forkserver";
  }
  return "unknown";
}

void start_forkserver() { detail::ensure_forkserver(); }

}  // namespace pool
