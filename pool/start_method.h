// How a ProcessPool starts its workers (Python's start methods). See ProcessPoolOptions::start.
#ifndef POOL_START_METHOD_H_
#define POOL_START_METHOD_H_

#include <optional>
#include <string_view>

namespace pool {

enum class Start {
  // fork() of the caller: the fastest start, and workers see the caller's memory as it was (its
  // globals, what the initializer captured). Only safe while the caller runs a single thread.
  fork,
  // A new execution of the program (/proc/self/exe) per worker, which runs no main: safe at any
  // time, the slowest start. Tasks see the program's memory as it is before main.
  spawn,
  // fork() of the program's forkserver, a new execution started once (first use, or
  // start_forkserver()): safe at any time, nearly as fast as fork. Memory as with spawn.
  forkserver,
};

// "fork", "spawn", "forkserver"; start_named() reads them back (nullopt for any other name).
std::string_view to_string(Start start);
std::optional<Start> start_named(std::string_view name);

// Starts this program's forkserver now (a new execution of the program; the first forkserver
// pool starts it otherwise). Thread-safe; does nothing when it runs. Throws std::system_error.
void start_forkserver();

}  // namespace pool

#endif  // POOL_START_METHOD_H_
