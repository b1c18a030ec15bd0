// A stream's batches on an MpiPool (the Batches of stream_engine.h): each batch is one job of
// encoded chunks that rank 0 hands to the worker ranks as they free up; each answer is decoded
// and reported to the stream. Progress, drawn on rank 0, is counted for the whole stream.
#ifndef POOL_DETAIL_MPI_STREAM_BATCHES_H_
#define POOL_DETAIL_MPI_STREAM_BATCHES_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pool/detail/backend.h"
#include "pool/detail/lifecycle.h"
#include "pool/detail/live_streams.h"
#include "pool/detail/mpi/job.h"
#include "pool/detail/mpi/jobs.h"
#include "pool/detail/mpi/pool_core.h"
#include "pool/detail/serialization.h"

namespace pool::detail {

// Item: what the runner decodes; Piece: a chunk's results (map), or its one folded value when
// per_chunk (reduce).
template <class Item, bool kLazyRange, class PieceType>
class MpiStreamBatches {
  template <class Sink>
  class BatchJob;

 public:
  using Piece = PieceType;
  using Handle = std::shared_ptr<MpiJob>;
  static constexpr bool kReportsFromThreads = false;

  // runner and state: as MpiJob's; total: the input's size when known.
  MpiStreamBatches(MpiPoolCore& core, CallInfo call, std::uint64_t runner, std::string state,
                   bool per_chunk, std::optional<std::uint64_t> total)
      : core_(&core),
        name_(call.name),
        runner_(runner),
        state_(std::move(state)),
        per_chunk_(per_chunk),
        progress_(std::make_shared<MpiCallProgress>()) {
    progress_->total = total;
    if (call.progress) progress_->show(call.name);
  }

  int size() const { return core_->size(); }
  LiveStreams* live_streams() { return &core_->live_streams(); }

  template <class Input, class Sink>
  Handle post(Input& input, typename Input::InputBatch&& batch, std::size_t first_chunk,
              std::size_t chunksize, Sink& sink) {
    auto job = std::make_shared<BatchJob<Sink>>(
        *this,
        cut_chunks<Item, kLazyRange>(static_cast<std::int64_t>(batch.first), batch.count, chunksize,
                                     input.begin_of(batch)),
        first_chunk, sink);
    job->share_progress(progress_);
    core_->submit(job, Lifecycle::State::kClosed);
    return job;
  }
  void cancel(Handle& handle) { handle->cancel(nullptr); }
  void drive_until(const std::function<bool()>& ready) { core_->drive_until(ready, std::nullopt); }

 private:
  template <class Sink>
  class BatchJob final : public MpiQueuedJob {
   public:
    BatchJob(const MpiStreamBatches& batches, std::deque<MpiChunk> chunks, std::size_t first_chunk,
             Sink& sink)
        : MpiQueuedJob(batches.name_, batches.runner_, batches.state_, std::move(chunks)),
          first_chunk_(first_chunk),
          per_chunk_(batches.per_chunk_),
          sink_(sink) {}

    void chunk_done(const MpiChunk& chunk, const std::byte* payload, std::size_t size,
                    bool) override {
      std::vector<Piece> pieces;
      try {
        const std::uint64_t count = per_chunk_ ? 1 : chunk.count;
        pieces.reserve(static_cast<std::size_t>(count));
        Decoder<Piece> decode(payload, size);
        for (std::uint64_t i = 0; i < count; ++i) pieces.push_back(decode.next());
      } catch (...) {
        return sink_.failed(first_chunk_ + chunk.index, std::current_exception());
      }
      sink_.done(first_chunk_ + chunk.index, std::move(pieces));
    }
    void chunk_failed(const MpiChunk& chunk, TaskFailure failure) override {
      sink_.failed(first_chunk_ + chunk.index, std::make_exception_ptr(failure.to_error()));
    }
    void finish() override { sink_.ended(first_chunk_, reason_); }
    // error: the pool was terminated; none: the stream cancelled the batch.
    void cancel(std::exception_ptr error) override {
      stop();
      if (error) reason_ = error;
    }

   private:
    const std::size_t first_chunk_;
    const bool per_chunk_;
    Sink& sink_;
    std::exception_ptr reason_;
  };

  MpiPoolCore* core_;
  const char* name_;
  std::uint64_t runner_;
  std::string state_;
  bool per_chunk_;
  std::shared_ptr<MpiCallProgress> progress_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_MPI_STREAM_BATCHES_H_
