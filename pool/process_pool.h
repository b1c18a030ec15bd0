// pool::ProcessPool: Python's multiprocessing.Pool for C++, on forked worker processes.
//
//   pool::ProcessPool workers(4);
//   std::vector<double> roots = workers.map([](int x) { return std::sqrt(x); }, pool::range(1000));
//
// Contract
// - Workers are started once, in the constructor, and replaced when one dies or has run
//   maxtasksperchild chunks, by the pool's start method (ProcessPoolOptions::start):
//   Start::fork copies the caller, so it is only safe while the caller runs one thread: fork()
//   copies only the calling thread, and any mutex another thread held stays locked forever in the
//   workers. Start::spawn and Start::forkserver start workers from a fresh execution of the
//   program, safe at any time. Left unset, the pool forks while the caller runs one thread and
//   uses the forkserver otherwise. An explicit Start::fork with other threads running is refused
//   (std::logic_error), unless ProcessPoolOptions::allow_fork_with_threads is set, and so is
//   every forked replacement: a process that started threads later keeps its pool's running
//   workers but gets no replacements until the threads are gone.
// - Spawned and forkserver workers share no memory with the caller: tasks see the program's
//   globals as they are before main, the initializer must be a plain function (void(*)()), and
//   a task function that is a function pointer is found by its module and offset, so it must lie
//   in the program or a library it links (not one loaded with dlopen after the start).
// - A replacement that cannot be started (fork refused for lack of memory or processes, threads
//   running, a start-up longer than start_timeout) is tried again while calls need workers, after
//   50 ms, then twice as long each time up to 1 s. Meanwhile the pool runs on the workers it has
//   and size() says how many. When it has none left and 8 tries in a row failed (or one start-up
//   overran), every pending and later call fails with WorkerStartError naming the cause; the
//   destructor never waits for workers that cannot exist.
// - A task function may be a function pointer, a lambda or a function object. It runs in another
//   process, so its state is copied there: it must be trivially copyable (a lambda capturing
//   numbers by value) or serializable with cereal (a struct with serialize()). Do not capture by
//   reference or hold pointers: they would point into the worker's copy of the parent's memory as
//   it was when the worker was forked, or into nothing at all in a spawned worker. Arguments and
//   results follow the same rule.
// - Work proceeds in the workers on its own; the parent notices finished work, runs callbacks and
//   replaces dead workers whenever the pool's thread calls into the pool or waits on one of its
//   results or streams. There is no background thread in the parent.
// - Failures: a task that throws fails its call with TaskError (the lowest failing index); a
//   worker that dies fails the call it was running with WorkerDied at once, and is replaced; a task
//   running longer than task_timeout is killed: TaskTimeout. The pool stays usable after each.
// - Ctrl-C (SIGINT) while the caller waits on the pool stops and reaps the workers and throws
//   Interrupted; the pool is then terminated. Programs usually exit with status 130.
// - Results come back through shared memory: a trivially copyable result is written by the
//   worker straight into its slot and copied once into the returned vector; other results are
//   cereal-serialized into the worker's result buffer and deserialized once.
// - The destructor waits for every submitted call (close() + join()), unless terminate() was
//   called; it removes every shared-memory segment; workers also die if the parent dies
//   (PR_SET_PDEATHSIG).
// - Not thread-safe: a pool, its results and its streams are used by the thread that created the
//   pool; a call from another thread throws std::logic_error (it would race on the shared
//   arena). Python's Pool takes calls from any thread because a background thread does its
//   bookkeeping; this pool has none, so that nothing runs in the parent behind the caller's back.
//   Use one pool per thread, or a thread pool. Callbacks run in that thread and must not call the
//   pool. A worker process cannot use its parent's pool.
// - Linux only.
#ifndef POOL_PROCESS_POOL_H_
#define POOL_PROCESS_POOL_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "pool/basic_pool.h"
#include "pool/detail/process/backend.h"
#include "pool/start_method.h"
#include "pool/trace.h"

namespace pool {

struct ProcessPoolOptions {
  // How workers are started (see pool/start_method.h); unset: Start::fork while this process
  // runs one thread, Start::forkserver once it runs more.
  std::optional<Start> start{};
  // Fork even though other threads run; only safe if no thread holds a lock a task will need
  // (malloc's are handled by glibc, but a logger's or an I/O library's are not). Unset start
  // then means Start::fork.
  bool allow_fork_with_threads = false;
  // Runs once in every worker right after it is started (Python's initializer + initargs: capture
  // the arguments). With Start::fork it may use anything the parent had; with spawn and
  // forkserver it must hold a plain function (void(*)(); `+[] { ... }` turns a lambda without
  // captures into one), or the constructor throws std::invalid_argument. If it throws, the
  // constructor (or the call during which a replacement failed) throws InitializerError, and the
  // pool stops: no worker that cannot start is started again and again.
  std::function<void()> initializer{};
  // A worker is replaced after running this many chunks (Python's tasks); 0: never.
  std::uint64_t maxtasksperchild = 0;
  // A worker whose resident memory exceeds this many bytes after a chunk is replaced before its
  // next one (loky's and Dask's recycling of leaky workers); 0: never.
  std::uint64_t max_memory_per_child = 0;
  // Chunks lost with a dead worker (a signal, an exit, the OOM killer, task_timeout) run again
  // on a live worker up to this many times before the call fails with WorkerDied, whose message
  // says how many attempts were made; pool::retrying(f, n) sets it for one call. A task that
  // throws is not retried (pool::retrying(f, n, pool::RetryOn::errors) asks for it).
  int retries = 0;
  // Every line a worker writes to stdout or stderr (stdio, iostreams) reaches this process's same
  // stream whole, prefixed "[worker 1 | task 17] ", never mixed with another worker's line.
  bool capture_output = false;
  // A task running longer than this is killed with its worker (TaskTimeout); zero: no limit.
  // Checked while the parent waits on the pool, at least every 50 ms.
  std::chrono::nanoseconds task_timeout{0};
  // A worker that has not finished starting (fork, then the initializer) within this time is
  // killed and reported: the pool carries on with the workers it has, and when it has none left,
  // calls fail with WorkerStartError. Checked while the parent waits on the pool. Zero: no limit.
  std::chrono::nanoseconds start_timeout = std::chrono::seconds(60);
  // Ctrl-C while waiting on the pool terminates it and throws Interrupted. Only when SIGINT has
  // its default action; a program's own SIGINT handler is left alone.
  bool handle_interrupts = true;
  // Draw a progress bar on stderr for every map, starmap, imap and map_reduce (see
  // pool/progress_bar.h): redrawn in place on a terminal, a line every second otherwise.
  bool progress = false;
  // Record a timeline of every worker into this trace (see pool/trace.h); it is complete once the
  // pool stopped its workers. Null: nothing is recorded and nothing is paid.
  std::shared_ptr<Trace> trace{};
  // Bind worker i to the i-th CPU this process may use (allowed_cpus(), wrapping around), so the
  // scheduler never moves it; a replacement takes its predecessor's CPU.
  bool pin_workers = false;
};

// The calls are BasicPool's (pool/basic_pool.h); the contract above says where they run.
class ProcessPool : public BasicPool<detail::ProcessBackend> {
 public:
  // One worker per CPU this process may use (see available_cpus()).
  ProcessPool();
  // Throws std::invalid_argument if ncores < 1, std::logic_error if other threads run,
  // InitializerError if the initializer throws, std::system_error if fork or shared memory fails.
  explicit ProcessPool(int ncores, ProcessPoolOptions options = {});
  ~ProcessPool();
  ProcessPool(ProcessPool&&) noexcept;
  ProcessPool& operator=(ProcessPool&&) noexcept;
  // How this pool starts its workers: ProcessPoolOptions::start, or what an unset one chose.
  Start start_method() const;
  // size() is the number of worker processes running (or starting): fewer than asked for while
  // a dead worker's replacement cannot be started (see "Contract"), 0 once none can be.
};

}  // namespace pool

#endif  // POOL_PROCESS_POOL_H_
