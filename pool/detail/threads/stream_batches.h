// A stream's batches on a thread pool (the Batches of stream_engine.h): each batch is one
// ThreadPoolCore job whose chunks the threads run on the stream's input where it lies, reporting
// each chunk to the stream as it finishes.
#ifndef POOL_DETAIL_THREADS_STREAM_BATCHES_H_
#define POOL_DETAIL_THREADS_STREAM_BATCHES_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <utility>
#include <vector>

#include "pool/detail/live_streams.h"
#include "pool/detail/threads/core.h"

namespace pool::detail {

template <class Kernel>
class ThreadStreamBatches {
 public:
  using Piece = typename Kernel::Piece;
  using Handle = std::shared_ptr<ThreadJob>;
  static constexpr bool kReportsFromThreads = true;

  ThreadStreamBatches(ThreadPoolCore& core, Kernel kernel)
      : core_(&core), kernel_(std::move(kernel)) {}

  int size() const { return core_->size(); }
  LiveStreams* live_streams() { return &core_->live_streams(); }

  // Accepted after close(), until the threads stop (join, terminate).
  template <class Input, class Sink>
  Handle post(Input& input, typename Input::InputBatch&& batch, std::size_t first_chunk,
              std::size_t chunksize, Sink& sink) {
    auto job = std::make_shared<Job<Input, Sink>>(*this, input, std::move(batch), first_chunk,
                                                  chunksize, sink);
    core_->submit_batch(job);
    return job;
  }
  void cancel(Handle& handle) { handle->cancel(nullptr); }

 private:
  template <class Input, class Sink>
  class Job final : public ThreadJob {
   public:
    Job(ThreadStreamBatches& batches, Input& input, typename Input::InputBatch batch,
        std::size_t first_chunk, std::size_t chunksize, Sink& sink)
        : ThreadJob(static_cast<std::size_t>(chunk_count(batch.count, chunksize))),
          kernel_(batches.kernel_),
          input_(input),
          batch_(std::move(batch)),
          first_chunk_(first_chunk),
          chunksize_(chunksize),
          sink_(sink) {}

   private:
    void run_chunk(std::size_t chunk) override {
      const std::size_t from = chunk * chunksize_;
      std::vector<Piece> pieces;
      const std::exception_ptr error = kernel_.run(
          batch_.first + from, std::min(chunksize_, batch_.count - from),
          [&](std::size_t k) -> decltype(auto) { return input_.item(batch_, from + k); }, pieces);
      if (error) {
        sink_.failed(first_chunk_ + chunk, error);
      } else {
        sink_.done(first_chunk_ + chunk, std::move(pieces));
      }
    }
    void settle() override { sink_.ended(first_chunk_, cancel_reason()); }
    std::pair<std::int64_t, std::uint64_t> items_of(std::size_t chunk) const override {
      const std::size_t from = chunk * chunksize_;
      return {static_cast<std::int64_t>(batch_.first + from),
              from < batch_.count ? std::min(chunksize_, batch_.count - from) : 0};
    }

    Kernel& kernel_;
    Input& input_;
    typename Input::InputBatch batch_;
    const std::size_t first_chunk_;
    const std::size_t chunksize_;
    Sink& sink_;
  };

  ThreadPoolCore* core_;
  Kernel kernel_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_THREADS_STREAM_BATCHES_H_
