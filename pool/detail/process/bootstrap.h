// How a worker that is not a fork of its pool's process starts (Start::spawn: a new execution of
// the program; Start::forkserver: a fork of the forkserver, itself such an execution). It shares
// no memory with the pool's process, so the pool sends it everything over its socket: the shared
// segments as descriptors, its slot, the initializer as a code address, the CPU to pin to, and
// the pool's table of loaded modules, from which the worker relocates the code addresses it is
// given (code_map.h). It then runs the same loop as a forked worker (worker_main.h).
//
// A new execution enters its role from a static constructor of this library, before main: a
// spawned worker or the forkserver never runs the program's main. With the library linked
// statically, the program's own static initializers ran before; with libpool.so, they did not.
#ifndef POOL_DETAIL_PROCESS_BOOTSTRAP_H_
#define POOL_DETAIL_PROCESS_BOOTSTRAP_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pool/detail/process/code_map.h"

namespace pool::detail {

struct Bootstrap {
  std::uint32_t index = 0;         // the worker's slot
  std::int64_t startup_ns = 0;     // CLOCK_MONOTONIC (the same clock in every process)
  std::uint64_t trace_offset = 0;  // the worker's TraceBuffer's memory in the trace segment
  std::string initializer;         // encode_code_address of a void(*)(); empty: none
  std::vector<int> cpus;           // pin_workers: CpuPinning's CPUs; empty: off
  std::vector<LoadedModule> modules;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(index, startup_ns, trace_offset, initializer, cpus, modules);
  }
};

// The shared segments a worker maps: descriptor and size each (fd -1: none, the trace only).
struct BootstrapSegment {
  int fd = -1;
  std::uint64_t size = 0;
};
struct BootstrapSegments {
  BootstrapSegment control, arena, results, trace;
};

// In the pool's process, on the parent's end of a new worker's socket. Returns false when the
// worker is gone already (it shows as EOF on the socket).
bool send_bootstrap(int fd, const Bootstrap& bootstrap, const BootstrapSegments& segments);

// In the new worker: reads its bootstrap from `fd` and serves until the pool closes the socket.
[[noreturn]] void serve_bootstrapped_worker(int fd);

enum class ProgramRole { kWorker, kForkserver };

// Starts this program again (/proc/self/exe) in `role`, with `fd` as its descriptor 3 and every
// other descriptor closed, signals at their defaults and unblocked; it enters the role before
// main (see above). Safe while other threads run (posix_spawn). Throws std::system_error.
pid_t start_program(ProgramRole role, int fd);

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_BOOTSTRAP_H_
