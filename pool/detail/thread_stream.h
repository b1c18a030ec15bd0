// imap, imap_unordered and map_reduce on a thread pool. A ChunkStream cuts its input into batches
// of chunks and submits each batch as one ThreadPoolCore job, never more than two batches ahead of
// its reader, so neither all inputs nor all results are held. Threads hand each finished chunk to
// the stream; the reader takes results in input order (imap, map_reduce's partials) or in
// completion order (imap_unordered).
#ifndef POOL_DETAIL_THREAD_STREAM_H_
#define POOL_DETAIL_THREAD_STREAM_H_

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

#include "pool/detail/map_job.h"
#include "pool/detail/memory_limits.h"
#include "pool/detail/task_failure.h"
#include "pool/detail/thread_map.h"
#include "pool/detail/thread_pool_core.h"
#include "pool/detail/wait_hook.h"
#include "pool/errors.h"
#include "pool/gil.h"
#include "pool/result_stream.h"

namespace pool::detail {

// A batch holds about this many items, and at least 8 chunks per thread: enough to keep every
// thread busy while the reader catches up.
inline constexpr std::size_t kBatchItems = 1024;

// f(item) on a mutable lvalue, as map calls it: the stream's own copy of the item when it holds
// one, else a copy made here.
template <class Item, class Result, class F, class Ref>
Result call_on_item(F& function, Ref&& ref) {
  if constexpr (std::is_same_v<Ref&&, Item&>) {
    return std::invoke(function, ref);
  } else {
    Item item(std::forward<Ref>(ref));
    return std::invoke(function, item);
  }
}

// An exception thrown by reading the input itself (not by the task): it reaches the caller as it
// was thrown, as Python's imap raises the iterable's own exception.
struct InputFailure {
  std::exception_ptr error;
};

// item(k), with an exception from the input wrapped in InputFailure.
template <class GetItem>
decltype(auto) read_input(GetItem& get, std::size_t k) {
  try {
    return get(k);
  } catch (...) {
    throw InputFailure{std::current_exception()};
  }
}

// What one chunk produced: imap's results before its failure, if any, or map_reduce's partial.
template <class Piece>
struct ChunkOutput {
  std::size_t first_index = 0;  // input index of the chunk's first item
  std::vector<Piece> pieces;
  std::optional<TaskFailure> failure;
  std::exception_ptr input_error;  // the chunk yields nothing then, as in Python
};

// imap's chunk: f on every item.
template <class Fn, class Item, class Result>
struct MapKernel {
  using Piece = Result;
  Fn function;

  template <class GetItem>
  void run(std::size_t first_index, std::size_t count, GetItem get, ChunkOutput<Result>& out) {
    std::size_t k = 0;
    try {
      out.pieces.reserve(count);
      for (; k < count; ++k) {
        out.pieces.push_back(call_on_item<Item, Result>(function, read_input(get, k)));
        gil::checkpoint();  // item boundaries are switch points, like bytecode boundaries
      }
    } catch (const InputFailure& input) {
      out.input_error = input.error;
      out.pieces.clear();
    } catch (...) {
      out.failure = TaskFailure::capture(static_cast<std::int64_t>(first_index + k),
                                         std::current_exception());
    }
  }
};

// map_reduce's chunk: op(T, Result) folds the chunk's results, starting from init.
template <class Fn, class Item, class Result, class Op, class T>
struct ReduceKernel {
  using Piece = T;
  Fn function;
  Op op;
  const T& init;

  template <class GetItem>
  void run(std::size_t first_index, std::size_t count, GetItem get, ChunkOutput<T>& out) {
    std::size_t k = 0;
    try {
      T partial = init;
      for (; k < count; ++k) {
        partial = std::invoke(op, std::move(partial),
                              call_on_item<Item, Result>(function, read_input(get, k)));
        gil::checkpoint();
      }
      out.pieces.push_back(std::move(partial));
    } catch (const InputFailure& input) {
      out.input_error = input.error;
      out.pieces.clear();
    } catch (...) {
      out.failure =
          TaskFailure::capture(static_cast<std::int64_t>(first_index + std::min(k, count - 1)),
                               std::current_exception());
    }
  }
};

// A stream's input, read batch by batch by the reader's thread. Stored is `Range&` (the caller's
// range, used in place) or an owned Range (moved into the stream). A sized random-access range is
// indexed where it lies (a batch is an interval of it); any other range is walked by the reader,
// which copies each batch's items (moves them out of an owned range), so threads never run the
// range's iterators.
template <class Range, bool kIndexed>
struct IndexBase {
  using type = std::nullptr_t;
};
template <class Range>
struct IndexBase<Range, true> {
  using type = std::ranges::iterator_t<const Range>;
};

template <class Stored>
class StreamInput {
  using Range = std::remove_reference_t<Stored>;
  static constexpr bool kIndexed =
      std::ranges::random_access_range<const Range> && std::ranges::sized_range<const Range>;
  static constexpr bool kOwned = !std::is_lvalue_reference_v<Stored>;

 public:
  using Item = std::ranges::range_value_t<Range>;

  struct Batch {
    std::size_t first = 0;  // input index of the batch's first item
    std::size_t count = 0;
    std::vector<Item> copies;  // unless indexed
  };

  explicit StreamInput(Stored range) : range_(std::forward<Stored>(range)) {
    if constexpr (kIndexed) {
      base_ = std::ranges::begin(std::as_const(range_));
      size_ = static_cast<std::size_t>(std::ranges::size(std::as_const(range_)));
    }
  }
  StreamInput(const StreamInput&) = delete;  // base_ may point into range_
  StreamInput& operator=(const StreamInput&) = delete;

  // Up to `max` next items, none at the end. An exception from the range's iterator ends the input
  // and lands in `error`; the batch keeps the items read before it.
  Batch next_batch(std::size_t max, std::exception_ptr& error) {
    Batch batch;
    batch.first = next_;
    if constexpr (kIndexed) {
      batch.count = std::min(max, size_ - next_);
    } else {
      try {
        if (!it_) it_.emplace(std::ranges::begin(range_));
        auto& it = *it_;
        while (batch.copies.size() < max && it != std::ranges::end(range_)) {
          if constexpr (kOwned) {
            batch.copies.push_back(std::ranges::iter_move(it));
          } else {
            batch.copies.push_back(*it);
          }
          ++it;
        }
      } catch (...) {
        error = std::current_exception();
      }
      batch.count = batch.copies.size();
    }
    next_ += batch.count;
    return batch;
  }

  // Item k of a batch: a reference to the stream's copy, or what the range's iterator yields.
  decltype(auto) item(Batch& batch, std::size_t k) const {
    if constexpr (kIndexed) {
      return base_[static_cast<std::ptrdiff_t>(batch.first + k)];
    } else {
      return batch.copies[k];
    }
  }

 private:
  Stored range_;
  std::size_t next_ = 0;
  std::size_t size_ = 0;                              // indexed only
  typename IndexBase<Range, kIndexed>::type base_{};  // indexed only
  // Walked only; begin() is taken on the first batch, in the reader's thread.
  std::optional<std::ranges::iterator_t<Range>> it_;
};

// Results of Kernel over the input, handed to the reader as Out: in input order when kOrdered,
// else in completion order as (index, result) pairs.
template <class Kernel, class Stored, class Out, bool kOrdered>
class ChunkStream final : public StreamSource<Out>, public LiveStream {
  using Input = StreamInput<Stored>;
  using Batch = typename Input::Batch;
  using Piece = typename Kernel::Piece;
  using Output = ChunkOutput<Piece>;

  class BatchJob final : public ThreadJob {
   public:
    BatchJob(ChunkStream& stream, Batch batch, std::size_t first_chunk, std::size_t chunks)
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
    Batch batch_;
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
      Batch batch = input_.next_batch(batch_items, error);
      if (error && !batch.copies.empty()) {
        // As Python's imap, the chunk the failing item belongs to yields nothing.
        batch.count -= batch.count % chunksize_;
        batch.copies.erase(batch.copies.begin() + static_cast<std::ptrdiff_t>(batch.count),
                           batch.copies.end());
      }
      if (batch.count < batch_items) input_done_ = true;
      if (batch.count > 0) submit(std::move(batch));
      if (error) {
        std::lock_guard<std::mutex> guard(mutex_);
        if (!stop_reason_) stop_reason_ = error;
      }
    }
  }

  void submit(Batch batch) {
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

template <class Range>
std::size_t stream_chunksize(const ThreadPoolCore& core, Range& range, std::size_t chunksize) {
  if (chunksize != 0) return chunksize;
  if constexpr (std::ranges::sized_range<Range>) {
    return default_chunksize(static_cast<std::size_t>(std::ranges::size(range)),
                             static_cast<std::size_t>(core.size()));
  } else {
    return 1;
  }
}

template <class F, class Inputs>
constexpr bool check_imap() {
  using Range = std::remove_reference_t<Inputs>;
  using Call = ItemCall<F, Range>;
  static_assert(Call::kRange,
                "imap: inputs must be an input range; a view that cannot be iterated when const "
                "(std::views::filter) must be passed non-const or as an rvalue");
  static_assert(!Call::kRange || Call::kCallable,
                "imap: f cannot be called with an item of inputs (an lvalue of its value type)");
  static_assert(!Call::kCallable || !std::is_void_v<typename Call::Raw>,
                "imap: f must return a value");
  return Call::kCallable && !std::is_void_v<typename Call::Raw>;
}

template <class F, class Inputs, class Op, class T>
constexpr bool check_map_reduce() {
  using Call = ItemCall<F, const Inputs>;
  static_assert(Call::kRange,
                "map_reduce: inputs must be a range that can be iterated through a const "
                "reference (not std::views::filter: use imap, or collect it first)");
  static_assert(!Call::kRange || Call::kCallable,
                "map_reduce: f cannot be called with an item of inputs (an lvalue of its value "
                "type)");
  static_assert(!Call::kCallable || !std::is_void_v<typename Call::Raw>,
                "map_reduce: f must return a value");
  using Result = ItemResult<F, const Inputs>;
  static_assert(std::is_invocable_r_v<T, Op&, T, Result>,
                "map_reduce: op(T, f's result) must return a T (T is the type of init)");
  static_assert(std::is_invocable_r_v<T, Op&, T, T>,
                "map_reduce: op(T, T) must return a T, to combine the chunks' partial results");
  static_assert(std::is_copy_constructible_v<T>,
                "map_reduce: T must be copyable: every chunk starts from a copy of init");
  return Call::kCallable && !std::is_void_v<typename Call::Raw> &&
         std::is_invocable_r_v<T, Op&, T, Result> && std::is_invocable_r_v<T, Op&, T, T> &&
         std::is_copy_constructible_v<T>;
}

// The stream owns a copy of f, and the input when it is an rvalue.
template <class Out, bool kOrdered, class F, class Inputs>
ResultStream<Out> thread_imap(ThreadPoolCore& core, F&& function, Inputs&& inputs,
                              std::size_t chunksize) {
  using Range = std::remove_reference_t<Inputs>;
  using Result = ItemResult<F, Range>;
  using Kernel = MapKernel<std::decay_t<F>, std::ranges::range_value_t<Range>, Result>;
  core.check_open();
  chunksize = stream_chunksize(core, inputs, chunksize);
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
T thread_map_reduce(ThreadPoolCore& core, F& function, const Inputs& inputs, Op& op, T init,
                    std::size_t chunksize) {
  using Result = ItemResult<F, const Inputs>;
  using Kernel = ReduceKernel<F&, std::ranges::range_value_t<const Inputs>, Result, Op&, T>;
  core.check_open();
  chunksize = stream_chunksize(core, inputs, chunksize);
  ChunkStream<Kernel, const Inputs&, T, true> stream(core, Kernel{function, op, init}, inputs,
                                                     chunksize);
  T total = init;
  std::vector<T> partials;
  while (stream.next_batch(partials)) {
    for (T& partial : partials) total = std::invoke(op, std::move(total), std::move(partial));
    partials.clear();
  }
  return total;
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_THREAD_STREAM_H_
