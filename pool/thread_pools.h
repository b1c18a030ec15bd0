// Thread pools with ProcessPool's API (Python's multiprocessing.Pool), for showing why Python needs
// processes.
//
// - GilThreadPool: threads that share one global interpreter-like lock, as CPython's threads
//   share the GIL. Task code and callbacks run only while holding it, so CPU-bound tasks never
//   overlap and the total time stays serial; the lock changes hands at pool::gil::checkpoint()
//   (every item boundary is one) after the switch interval (default 5 ms, like
//   sys.setswitchinterval), and is released by pool::gil::sleep_for, by pool::gil::Released and
//   while a thread waits for work, so sleeping tasks do overlap.
// - FreeThreadPool: plain threads, no global lock (free-threaded Python 3.13t).
//
//   pool::FreeThreadPool workers(4);
//   std::vector<double> roots = workers.map(slow_sqrt, pool::range(0, 1000));
//   pool::AsyncResult<double> one = workers.apply_async(slow_sqrt, 2.0);
//   for (double root : workers.imap(slow_sqrt, std::views::iota(0, 1000))) print(root);
//
// Contract
// - Tasks share the caller's memory: f and the items need not be serializable, and f must be
//   safe to call from several threads at once. Blocking calls (map, starmap, apply, map_reduce)
//   use f and the inputs in place; the others copy f, and the *_async calls copy the items (a
//   pool::range as its bounds), so that both may go away once the call returned.
// - Calls run concurrently: each is a job in one FIFO queue, and an idle thread takes the next
//   chunk of the oldest job that has chunks left. Callbacks run in the thread that finished the
//   call's last chunk.
// - A task that throws makes the call fail with TaskError for the lowest failing index (index 0
//   for apply); the rest of that call is cancelled and the pool stays usable.
// - A map whose sizes cannot exist throws std::length_error, one whose results exceed memory and
//   swap (or the memory cgroup's limit) pool::OutOfMemory, both before anything is submitted.
// - Threads start in the constructor. The destructor is close() + join(): every call already
//   submitted completes first. Start thread pools after any ProcessPool, or destroy them first:
//   a ProcessPool refuses to fork while threads run.
// - A pool's calls are made from one thread at a time; its AsyncResults may be waited on from any
//   thread. A ResultStream must not outlive its pool.
#ifndef POOL_THREAD_POOLS_H_
#define POOL_THREAD_POOLS_H_

#include <chrono>
#include <functional>
#include <memory>

#include "pool/basic_pool.h"
#include "pool/detail/threads/backend.h"
#include "pool/gil.h"
#include "pool/trace.h"

namespace pool {

struct ThreadPoolOptions {
  // Runs once in each thread before its first task (Python's initializer; capture initargs in a
  // lambda). If it throws, the constructor joins the threads and throws InitializerError.
  std::function<void()> initializer{};
  // Draw a progress bar on stderr for every map, starmap, imap and map_reduce, as ProcessPool.
  bool progress = false;
  // Record a timeline of every thread into this trace (see pool/trace.h); it is complete once the
  // pool stopped its threads. Null: nothing is recorded.
  std::shared_ptr<Trace> trace{};
  // Bind thread i to the i-th CPU this process may use (allowed_cpus(), wrapping around).
  bool pin_workers = false;
  // pool::print in a task prefixes its lines "[worker 1 | task 17] " (threads share the process's
  // streams: printf and std::cout are not labelled; see pool/print.h).
  bool capture_output = false;
};

// The calls are BasicPool's (pool/basic_pool.h). terminate() drops work not yet started (its
// AsyncResults and streams fail with PoolNotRunning; error callbacks run in the calling thread),
// lets running chunks finish (threads cannot be killed), then stops the threads. join() lets
// streams still being read submit the rest of their input, so their results can be read after.
class GilThreadPool : public BasicPool<detail::ThreadBackend> {
 public:
  static constexpr std::chrono::milliseconds kDefaultSwitchInterval{5};

  GilThreadPool();  // one thread per available CPU
  // Throws std::invalid_argument if ncores < 1, InitializerError if the initializer throws.
  explicit GilThreadPool(int ncores,
                         std::chrono::nanoseconds switch_interval = kDefaultSwitchInterval,
                         ThreadPoolOptions options = {});

  void set_switch_interval(std::chrono::nanoseconds interval);
  std::chrono::nanoseconds switch_interval() const;
};

class FreeThreadPool : public BasicPool<detail::ThreadBackend> {
 public:
  FreeThreadPool();  // one thread per available CPU
  // Throws std::invalid_argument if ncores < 1, InitializerError if the initializer throws.
  explicit FreeThreadPool(int ncores, ThreadPoolOptions options = {});
};

}  // namespace pool

#endif  // POOL_THREAD_POOLS_H_
