// One MpiPool call (map, imap, map_reduce, apply) on rank 0, as the pool's core drives it: the
// chunks it hands out and what it does with their answers. pool/detail/mpi_jobs.h holds the calls.
// Used from rank 0's pool thread only.
#ifndef POOL_DETAIL_MPI_JOB_H_
#define POOL_DETAIL_MPI_JOB_H_

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pool/detail/task_failure.h"
#include "pool/progress_bar.h"

namespace pool::detail {

// A chunk as rank 0 hands it out.
struct MpiChunk {
  std::uint64_t index = 0;      // within its call
  std::int64_t first_item = 0;  // index of its first item in the call's inputs
  std::uint64_t count = 0;
  std::int64_t range_first = 0;  // pool::range inputs: the value of the first item
  std::string items;             // other inputs: the encoded items (moved out when sent)
};

// What a call has done, for its progress bar and for the report of a lost rank; the batch jobs
// of one stream share it. The bar, when shown, finishes when the call's last job lets go.
struct MpiCallProgress {
  MpiCallProgress() = default;
  ~MpiCallProgress();
  MpiCallProgress(const MpiCallProgress&) = delete;
  MpiCallProgress& operator=(const MpiCallProgress&) = delete;

  void show(const char* description);
  void count(std::uint64_t items);

  std::optional<std::uint64_t> total;  // when known
  std::uint64_t items_done = 0;
  std::unique_ptr<ProgressBar> bar;
};

class MpiJob {
 public:
  // runner: the id of the runner that runs its chunks (see function_identity.h); state: what that
  // runner is built from on each rank (the encoded task function, and op and init).
  MpiJob(const char* name, std::uint64_t runner, std::string state)
      : name_(name), runner_(runner), state_(std::move(state)) {}
  virtual ~MpiJob() = default;
  MpiJob(const MpiJob&) = delete;
  MpiJob& operator=(const MpiJob&) = delete;

  const char* name() const { return name_; }
  std::uint64_t runner() const { return runner_; }
  const std::string& state() const { return state_; }

  // The next chunk to hand out; false when there is none now (inputs exhausted, a failure met, a
  // stream's window full).
  virtual bool next_chunk(MpiChunk& chunk) = 0;
  // True once next_chunk will never give another chunk.
  virtual bool exhausted() const = 0;
  // Where `bytes` of results for `chunk` may be received in place, or nullptr.
  virtual std::byte* destination(const MpiChunk& /*chunk*/, std::size_t /*bytes*/) {
    return nullptr;
  }
  // The chunk's results: in `payload`, or already at destination() when in_place.
  virtual void chunk_done(const MpiChunk& chunk, const std::byte* payload, std::size_t size,
                          bool in_place) = 0;
  virtual void chunk_failed(const MpiChunk& chunk, TaskFailure failure) = 0;
  // Every chunk handed out was answered and exhausted() holds.
  virtual void finish() = 0;
  // The pool was terminated: give out no more chunks, fail the call, drop late results.
  virtual void cancel(std::exception_ptr error) = 0;

  // Items done are counted as chunks come back, into the call's progress (shared by a stream's
  // batches); the job lets go of it when it settles.
  MpiCallProgress& progress() { return *progress_; }
  void share_progress(std::shared_ptr<MpiCallProgress> progress) {
    progress_ = std::move(progress);
  }
  void count_done(std::uint64_t items) { progress_->count(items); }
  void end_progress() { progress_ = std::make_shared<MpiCallProgress>(); }
  std::uint64_t items_done() const { return progress_->items_done; }
  std::optional<std::uint64_t> total() const { return progress_->total; }

 private:
  friend class MpiPoolCore;
  const char* name_;
  std::uint64_t runner_;
  std::string state_;
  std::uint64_t id_ = 0;         // set by the core
  std::size_t in_flight_ = 0;    // chunks handed out, not answered
  std::vector<int> ranks_told_;  // ranks that hold its runner
  std::shared_ptr<MpiCallProgress> progress_ = std::make_shared<MpiCallProgress>();
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_MPI_JOB_H_
