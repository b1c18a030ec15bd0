// imap, imap_unordered and map_reduce on a thread pool. A ChunkStream cuts its input into batches
// of chunks and submits each batch as one ThreadPoolCore job, never more than two batches ahead of
// its reader, so neither all inputs nor all results are held. Threads hand each finished chunk to
// the stream; the reader takes results in input order (imap, map_reduce's partials) or in
// completion order (imap_unordered).
#ifndef POOL_DETAIL_THREADS_CHUNK_STREAM_H_
#define POOL_DETAIL_THREADS_CHUNK_STREAM_H_

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/detail/chunking.h"
#include "pool/detail/memory_limits.h"
#include "pool/detail/stream_input.h"
#include "pool/detail/task_failure.h"
#include "pool/detail/threads/core.h"
#include "pool/detail/threads/kernels.h"
#include "pool/detail/wait_hook.h"
#include "pool/errors.h"
#include "pool/gil.h"
#include "pool/result_stream.h"

namespace pool::detail {

// A batch holds about this many items, and at least 8 chunks per thread: enough to keep every
// thread busy while the reader catches up.
inline constexpr std::size_t kBatchItems = 1024;

// Results of Kernel over the input, handed to the reader as Out: in input order when kOrdered,
// else in completion order as (index, result) pairs.
template <class Kernel, class Stored, class Out, bool kOrdered>
class ChunkStream final : public StreamSource<Out>, public LiveStream {
  using Input = StreamInput<Stored>;
  using InputBatch = typename Input::InputBatch;
  using Piece = typename Kernel::Piece;
  using Output = ChunkOutput<Piece>;

  class BatchJob final : public ThreadJob {
   public:
    BatchJob(ChunkStream& stream, InputBatch batch, std::size_t first_chunk, std::size_t chunks)
        : ThreadJob(chunks), stream_(stream), batch_(std::move(batch)), first_chunk_(first_chunk) {}

   private:
    friend class ChunkStream;
    void run_chunk(std::size_t chunk) override { stream_.run_chunk(*this, chunk); }
    void settle() override { stream_.settle_batch(*this, cancel_reason()); }
    std::pair<std::int64_t, std::uint64_t> items_of(std::size_t chunk) const override {
      const std::size_t from = chunk * stream_.chunksize_;
      return {static_cast<std::int64_t>(batch_.first + from),
              from < batch_.count ? std::min(stream_.chunksize_, batch_.count - from) : 0};
    }

    ChunkStream& stream_;
    InputBatch batch_;
    const std::size_t first_chunk_;  // stream-wide index of the batch's first chunk
    std::size_t delivered_ = 0;      // under the stream's mutex
  };

  // A chunk of the ordered stream, between its submission and the reader.
  struct Slot {
    enum class Status { kRunning, kDone, kDropped } status = Status::kRunning;
    Output output;
  };

 public:
  ChunkStream(ThreadPoolCore& core, Kernel kernel, Stored inputs, std::size_t chunksize)
      : core_(core),
        kernel_(std::move(kernel)),
        input_(std::forward<Stored>(inputs)),
        chunksize_(chunksize),
        batch_chunks_(std::max<std::size_t>(8 * static_cast<std::size_t>(core.size()),
                                            chunk_count(kBatchItems, chunksize))) {
    try {
      feed(false);  // the work starts now, as in Python, not when the reader first looks
      core_.add_stream(this);
    } catch (...) {
      stop();
      throw;
    }
  }

  // Cancels the chunks not started and waits for the running ones.
  ~ChunkStream() override {
    core_.remove_stream(this);
    stop();
  }

  ChunkStream(const ChunkStream&) = delete;
  ChunkStream& operator=(const ChunkStream&) = delete;

  bool next_batch(std::vector<Out>& out) override {
    if (deferred_) std::rethrow_exception(std::exchange(deferred_, nullptr));
    for (;;) {
      feed(false);
      std::unique_lock<std::mutex> guard(mutex_);
      if (std::exception_ptr error = take_finished(out)) {
        if (out.empty()) std::rethrow_exception(error);
        deferred_ = error;  // thrown on the next call, once the results before it are read
        return true;
      }
      if (!out.empty()) {
        guard.unlock();
        feed(false);  // what the reader just took makes room for the next batch
        return true;
      }
      if (outstanding_ == 0) {
        if (stop_reason_) std::rethrow_exception(stop_reason_);
        if (input_done_) return false;
        continue;
      }
      if (current_wait_hook == nullptr) {
        changed_.wait(guard);
        continue;
      }
      changed_.wait_for(guard, kWaitHookPeriod);
      guard.unlock();
      run_wait_hook();
    }
  }

  // join(): the rest of the input is submitted, so its results can be read after the threads stop.
  void submit_all() override { feed(true); }

 private:
  // Submits batches while fewer than two are outstanding (all of them for join).
  void feed(bool all) {
    // A huge chunksize makes one batch of everything rather than an overflowed, empty one.
    const std::size_t batch_items =
        chunksize_ > SIZE_MAX / batch_chunks_ ? SIZE_MAX : batch_chunks_ * chunksize_;
    while (!input_done_) {
      {
        std::lock_guard<std::mutex> guard(mutex_);
        if (stopping_ || stop_reason_) {
          input_done_ = true;
          return;
        }
        if (!all && outstanding_ > batch_chunks_) return;
      }
      std::exception_ptr error;
      InputBatch batch = input_.next_batch(batch_items, chunksize_, error);
      if (error || batch.count < batch_items) input_done_ = true;
      if (batch.count > 0) submit(std::move(batch));
      if (error) {
        std::lock_guard<std::mutex> guard(mutex_);
        if (!stop_reason_) stop_reason_ = error;
      }
    }
  }

  void submit(InputBatch batch) {
    const auto chunks = static_cast<std::size_t>(chunk_count(batch.count, chunksize_));
    auto job = std::make_shared<BatchJob>(*this, std::move(batch), submitted_chunks_, chunks);
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if constexpr (kOrdered) pending_.resize(pending_.size() + chunks);
      outstanding_ += chunks;
      live_.push_back(job);
    }
    submitted_chunks_ += chunks;
    try {
      core_.submit_batch(job);
    } catch (...) {
      // The threads stopped (join, terminate): the stream ends where this batch begins.
      input_done_ = true;
      job->cancel(std::current_exception());
    }
  }

  void run_chunk(BatchJob& job, std::size_t chunk) {
    const std::size_t from = chunk * chunksize_;
    const std::size_t to = from + std::min(chunksize_, job.batch_.count - from);
    Output output;
    output.first_index = job.batch_.first + from;
    kernel_.run(
        output.first_index, to - from,
        [&](std::size_t k) -> decltype(auto) { return input_.item(job.batch_, from + k); }, output);
    deliver(job, job.first_chunk_ + chunk, std::move(output));
  }

  void deliver(BatchJob& job, std::size_t chunk, Output output) {
    std::vector<std::shared_ptr<BatchJob>> cancelled;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      ++job.delivered_;
      const bool failed = output.failure.has_value();
      if constexpr (kOrdered) {
        Slot& slot = pending_[chunk - consumed_];
        slot.output = std::move(output);
        slot.status = Slot::Status::kDone;
      } else {
        ready_.push_back(std::move(output));
      }
      // The stream ends at a failure: the chunks not started need not run.
      if (failed && !stopping_) {
        stopping_ = true;
        cancelled = live_;
      }
      changed_.notify_all();
    }
    for (const auto& other : cancelled) other->cancel(nullptr);
  }

  // The last thing a batch does; the stream may be destroyed as soon as the mutex is released.
  void settle_batch(BatchJob& job, std::exception_ptr reason) {
    std::shared_ptr<BatchJob> released;  // dropped after the mutex, in case it was the last owner
    std::lock_guard<std::mutex> guard(mutex_);
    const std::size_t dropped = job.chunks() - job.delivered_;
    if (dropped > 0) {
      if constexpr (kOrdered) {
        const std::size_t end = job.first_chunk_ + job.chunks();
        for (std::size_t c = std::max(job.first_chunk_, consumed_); c < end; ++c) {
          Slot& slot = pending_[c - consumed_];
          if (slot.status == Slot::Status::kRunning) slot.status = Slot::Status::kDropped;
        }
      } else {
        outstanding_ -= dropped;
      }
      if (reason && !stop_reason_) stop_reason_ = reason;
    }
    const auto it = std::find_if(live_.begin(), live_.end(),
                                 [&](const auto& live) { return live.get() == &job; });
    released = std::move(*it);
    live_.erase(it);
    changed_.notify_all();
  }

  // Under the mutex: moves the results at the head of the stream into out; returns the failure
  // met there, if any.
  std::exception_ptr take_finished(std::vector<Out>& out) {
    for (;;) {
      Output output;
      if constexpr (kOrdered) {
        if (pending_.empty() || pending_.front().status == Slot::Status::kRunning) return nullptr;
        if (pending_.front().status == Slot::Status::kDropped) {
          return stop_reason_ ? stop_reason_
                              : std::make_exception_ptr(
                                    PoolNotRunning("pool: the pool dropped this stream's work"));
        }
        output = std::move(pending_.front().output);
        pending_.pop_front();
        ++consumed_;
      } else {
        if (ready_.empty()) return nullptr;
        output = std::move(ready_.front());
        ready_.pop_front();
      }
      --outstanding_;
      for (std::size_t k = 0; k < output.pieces.size(); ++k) {
        if constexpr (kOrdered) {
          out.push_back(std::move(output.pieces[k]));
        } else {
          out.emplace_back(output.first_index + k, std::move(output.pieces[k]));
        }
      }
      if (output.input_error) return output.input_error;
      if (output.failure) return std::make_exception_ptr(output.failure->to_error());
    }
  }

  // Submits nothing more, cancels the chunks not started, waits for the running ones.
  void stop() {
    std::vector<std::shared_ptr<BatchJob>> live;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      stopping_ = true;
      live = live_;
    }
    for (const auto& job : live) job->cancel(nullptr);
    std::unique_lock<std::mutex> guard(mutex_);
    changed_.wait(guard, [this] { return live_.empty(); });
  }

  ThreadPoolCore& core_;
  Kernel kernel_;
  Input input_;
  const std::size_t chunksize_;
  const std::size_t batch_chunks_;

  // The reader's thread only.
  bool input_done_ = false;
  std::size_t submitted_chunks_ = 0;
  std::exception_ptr deferred_;

  // Shared with the threads.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Slot> pending_;        // ordered: chunks [consumed_, submitted_chunks_)
  std::deque<Output> ready_;        // unordered: finished chunks in completion order
  std::size_t consumed_ = 0;        // ordered: chunks handed to the reader
  std::size_t outstanding_ = 0;     // chunks submitted, neither handed to the reader nor dropped
  bool stopping_ = false;           // a task failed, or the stream is going away
  std::exception_ptr stop_reason_;  // the stream ends early: terminate(), or the input threw
  std::vector<std::shared_ptr<BatchJob>> live_;  // batches not settled yet
};

// The stream owns a copy of f, and the input when it is an rvalue.
template <class Out, bool kOrdered, class F, class Inputs>
ResultStream<Out> thread_imap(ThreadPoolCore& core, F&& function, Inputs&& inputs,
                              std::size_t chunksize) {
  using Range = std::remove_reference_t<Inputs>;
  using Result = ItemResult<F, Range>;
  using Kernel = MapKernel<std::decay_t<F>, std::ranges::range_value_t<Range>, Result>;
  core.check_can_submit();
  chunksize = stream_chunksize(inputs, static_cast<std::size_t>(core.size()), chunksize);
  if constexpr (std::ranges::sized_range<Range>) {
    // A chunk's results are held together, so a chunk of a long input can be too large to exist.
    const std::uint64_t items =
        std::min<std::uint64_t>(chunksize, static_cast<std::uint64_t>(std::ranges::size(inputs)));
    const std::uint64_t bytes =
        checked_product(items, sizeof(Result), "imap's chunk of results (items x bytes)");
    if (bytes > memory_limit_bytes()) {
      check_memory_request(bytes, "imap's chunk of " + std::to_string(items) + " results");
    }
  }
  return ResultStream<Out>(std::make_unique<ChunkStream<Kernel, Inputs, Out, kOrdered>>(
      core, Kernel{std::forward<F>(function)}, std::forward<Inputs>(inputs), chunksize));
}

// Blocks; f, op and inputs are used in place.
template <class F, class Inputs, class Op, class T>
T thread_map_reduce(ThreadPoolCore& core, F& function, Inputs& inputs, Op& op, T init,
                    std::size_t chunksize) {
  using Result = ItemResult<F, Inputs>;
  using Kernel = ReduceKernel<F&, std::ranges::range_value_t<Inputs>, Result, Op&, T>;
  core.check_can_submit();
  chunksize = stream_chunksize(inputs, static_cast<std::size_t>(core.size()), chunksize);
  ChunkStream<Kernel, Inputs&, T, true> stream(core, Kernel{function, op, init}, inputs, chunksize);
  T total = init;
  std::vector<T> partials;
  while (stream.next_batch(partials)) {
    for (T& partial : partials) total = std::invoke(op, std::move(total), std::move(partial));
    partials.clear();
  }
  return total;
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_THREADS_CHUNK_STREAM_H_
