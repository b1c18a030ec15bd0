// The operating-system steps a process pool takes outside its shared memory: counting this
// process's threads before a fork, reaping a worker, reading SIGINT's disposition, and keeping
// the list of the parent's socket ends that every new worker must close.
#ifndef POOL_DETAIL_PROCESS_OS_H_
#define POOL_DETAIL_PROCESS_OS_H_

#include <sys/types.h>

#include <chrono>
#include <cstddef>

namespace pool::detail {

// How long a worker told to stop (EOF on its socket, or its parent gone) gets to exit on its own.
inline constexpr auto kExitGrace = std::chrono::milliseconds(2000);

// `bytes` rounded up to whole pages.
std::size_t round_to_pages(std::size_t bytes);

// Threads of this process, once any thread that was just joined has left the list (the kernel
// tears a thread down a moment after join returns).
int settled_thread_count();

// Reaps `pid`, giving it `grace` to exit on its own before SIGKILL; returns its wait status (0
// when it is not this process's child any more).
int reap(pid_t pid, std::chrono::milliseconds grace);

// Whether SIGINT still has its default action (no handler of the program's own).
// Whether `signal_number` has its default action (no handler of the program's, not ignored).
bool signal_is_default(int signal_number);

// The parent's ends of every pool's sockets in this process. A worker closes all of them right
// after fork: otherwise a worker of one pool would keep another pool's workers from seeing EOF.
// Not thread-safe: pools are used by the thread that made them, and forks happen there.
void remember_parent_end(int fd);
void forget_parent_end(int fd);
// In a newly forked worker.
void close_parent_ends();

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_OS_H_
