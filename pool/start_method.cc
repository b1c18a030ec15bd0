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

std::optional<Start> start_named(std::string_view name) {
  for (const Start start : {Start::fork, Start::spawn, Start::forkserver}) {
    if (to_string(start) == name) return start;
  }
  return std::nullopt;
}

void start_forkserver() { detail::ensure_forkserver(); }

}  // namespace pool
