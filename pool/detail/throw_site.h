// Where a task's exception was thrown. The C++ runtime's __cxa_throw is wrapped (throw_site.cc, as
// Boost.Stacktrace 1.85's from_current_exception does): in a thread that runs tasks, every throw
// records its raw frames, a few microseconds, and a TaskError made from that exception carries
// them, symbolized. Threads that run no tasks (the caller's) record nothing.
#ifndef POOL_DETAIL_THROW_SITE_H_
#define POOL_DETAIL_THROW_SITE_H_

#include <exception>
#include <string>

namespace pool::detail {

// From now on the calling thread records where its exceptions are thrown: every worker thread,
// worker process and worker rank calls it once before its first task.
void record_throw_sites();

// Records throw sites in the calling thread while it lives (a caller's thread that runs tasks
// itself for a while: MpiPool in a job of one rank), then leaves the thread as it was.
class RecordingThrowSites {
 public:
  RecordingThrowSites();
  ~RecordingThrowSites();
  RecordingThrowSites(const RecordingThrowSites&) = delete;
  RecordingThrowSites& operator=(const RecordingThrowSites&) = delete;

 private:
  bool was_recording_;
};

// The symbolized stack where `error` was thrown, if it is the last exception thrown in this thread
// and the thread records throw sites; empty otherwise.
std::string throw_site_of(const std::exception_ptr& error);

}  // namespace pool::detail

#endif  // POOL_DETAIL_THROW_SITE_H_
