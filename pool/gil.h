// pool::gil: what task code calls so that it behaves like Python code under CPython's GIL.
//
// On a GilThreadPool thread, task code runs while holding the pool's one global lock, so CPU-bound
// tasks never overlap. These calls give the lock up the way CPython does:
// - checkpoint(): a long loop calls it every few thousand iterations; when the switch interval
//   has passed and another thread waits, the lock goes to that thread (CPython's eval-breaker).
// - sleep_for(d) and a Released scope: blocking work without the lock, so sleeping tasks overlap
//   (CPython releases the GIL in time.sleep and in I/O).
// Everywhere else (a process pool's worker, a FreeThreadPool thread, any other thread) they cost
// one thread-local load and do nothing, so the same task code runs on every pool.
#ifndef POOL_GIL_H_
#define POOL_GIL_H_

#include <chrono>

namespace pool::detail {
class GilLock;
}

namespace pool::gil {

// Hands the lock to a waiting thread if this thread has held it for the switch interval.
void checkpoint();

// Sleeps without holding the lock; a plain sleep outside a GIL pool.
void sleep_for(std::chrono::nanoseconds duration);

// True on a GilThreadPool thread (which then holds the lock while it runs task code).
bool held_by_this_thread();

// Releases the lock for the scope's lifetime (blocking I/O, a C library call), then takes it
// back. Not copyable; nest freely. A no-op outside a GIL pool.
class Released {
 public:
  Released();
  ~Released();
  Released(const Released&) = delete;
  Released& operator=(const Released&) = delete;

 private:
  detail::GilLock* lock_;
};

}  // namespace pool::gil

#endif  // POOL_GIL_H_
