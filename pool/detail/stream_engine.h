// The one stream engine behind imap, imap_unordered and map_reduce on every pool: it reads the
// input in batches of whole chunks (stream_input.h), keeps about two batches ahead of its reader,
// hands results out in input order or in completion order, ends at the first failure after every
// earlier result, and cancels what has not started when it is dropped or fails. A backend only
// runs the batches it is given and reports their chunks.
//
// The seam, a Batches class each backend provides (compile time; nothing virtual per chunk):
//
//   using Piece;    // what a chunk yields: imap's results, or map_reduce's one folded value
//   using Handle;   // a posted batch, for cancel()
//   // Reports come from the pool's own threads (else from inside drive_until, in the reader's).
//   static constexpr bool kReportsFromThreads;
//   int size() const;  // workers, for the batch size
//   // Runs chunks [first_chunk, first_chunk + n) of the stream, chunk k of the batch over its
//   // items [k * chunksize, ...), and reports each once to `sink` as sink.done(chunk, pieces) or
//   // sink.failed(chunk, error) (its task threw, its worker died, its input threw), then
//   // sink.ended(first_chunk, reason) when none will follow: chunks not reported were dropped,
//   // because the stream cancelled them (reason null) or the pool stopped (reason says why).
//   // Chunks start in stream order. Throws, with nothing posted, when the pool takes no more.
//   template <class Input, class Sink>
//   Handle post(Input& input, typename Input::InputBatch&& batch, std::size_t first_chunk,
//               std::size_t chunksize, Sink& sink);
//   void cancel(Handle& handle);   // no chunk of it starts any more; running ones still report
//   void drive_until(const std::function<bool()>& ready);  // unless kReportsFromThreads
//   // The pool's open streams, so that join() posts the rest (live_streams.h); null once the
//   // pool is gone.
//   LiveStreams* live_streams();
#ifndef POOL_DETAIL_STREAM_ENGINE_H_
#define POOL_DETAIL_STREAM_ENGINE_H_

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <list>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "pool/detail/chunking.h"
#include "pool/detail/live_streams.h"
#include "pool/detail/stream_input.h"
#include "pool/detail/wait_hook.h"
#include "pool/errors.h"
#include "pool/result_stream.h"

namespace pool::detail {

// Results of the stream's chunks, handed to the reader as Out: Piece in input order when
// kOrdered, else (input index, Piece) pairs in completion order.
template <class Batches, class Stored, class Out, bool kOrdered>
class StreamEngine final : public StreamSource<Out>, public LiveStream {
  using Piece = typename Batches::Piece;
  using Handle = typename Batches::Handle;
  using Input = StreamInput<Stored>;

  // A chunk between its posting and the reader.
  struct Chunk {
    enum class Status { kRunning, kDone, kFailed, kDropped } status = Status::kRunning;
    std::size_t index = 0;  // in the stream
    std::vector<Piece> pieces;
    std::exception_ptr error;  // failed: why; dropped: why, or null when cancelled
  };
  struct Batch {
    std::size_t first_chunk = 0;
    std::size_t chunks = 0;
    std::vector<bool> reported;  // by chunk of the batch
    std::size_t reports = 0;
    std::optional<Handle> handle;  // once posted
    bool cancelled = false;
  };

 public:
  // The work starts here, as in Python, not when the reader first looks.
  StreamEngine(Batches batches, Stored inputs, std::size_t chunksize)
      : batches_(std::move(batches)),
        input_(std::forward<Stored>(inputs)),
        chunksize_(chunksize == 0 ? 1 : chunksize),
        batch_items_(stream_batch_items(static_cast<std::size_t>(batches_.size()), chunksize_)) {
    try {
      feed(false);
      if (LiveStreams* streams = batches_.live_streams()) streams->add(this);
    } catch (...) {
      stop();
      throw;
    }
  }

  // Cancels the chunks not started and waits for the running ones: no task of the stream runs
  // once it is gone.
  ~StreamEngine() override {
    if (LiveStreams* streams = batches_.live_streams()) streams->remove(this);
    stop();
  }
  StreamEngine(const StreamEngine&) = delete;
  StreamEngine& operator=(const StreamEngine&) = delete;

  bool next_batch(std::vector<Out>& out) override {
    if (deferred_) std::rethrow_exception(std::exchange(deferred_, nullptr));
    for (;;) {
      feed(false);
      std::unique_lock<std::mutex> guard(mutex_);
      if (failed_ && !failure_handled_) {
        failure_handled_ = true;
        cancel_all(guard);  // the stream ends there: what has not started need not run
      }
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
        if (input_done_) {
          // As Python's imap, an input that throws ends the stream after the chunks before it.
          if (input_error_) std::rethrow_exception(std::exchange(input_error_, nullptr));
          return false;
        }
        continue;
      }
      wait(guard, [this] { return reader_ready(); });
    }
  }

  void post_rest() override { feed(true); }

  // The sink's side, called by the backend for the batches it runs.
  void done(std::size_t chunk, std::vector<Piece>&& pieces) {
    report(chunk, std::move(pieces), nullptr);
  }
  void failed(std::size_t chunk, std::exception_ptr error) { report(chunk, {}, std::move(error)); }
  // The batch's last report: the stream may be destroyed once it returns.
  void ended(std::size_t first_chunk, std::exception_ptr reason) {
    std::optional<Handle> released;  // dropped after the mutex, in case it owns the batch
    std::lock_guard<std::mutex> guard(mutex_);
    const auto batch = find_batch(first_chunk);
    if (const std::size_t dropped = batch->chunks - batch->reports; dropped > 0) {
      if constexpr (kOrdered) {
        const std::size_t end = batch->first_chunk + batch->chunks;
        for (std::size_t c = std::max(batch->first_chunk, consumed_); c < end; ++c) {
          Chunk& slot = pending_[c - consumed_];
          if (slot.status == Chunk::Status::kRunning) {
            slot.status = Chunk::Status::kDropped;
            slot.error = reason;
          }
        }
      } else {
        outstanding_ -= dropped;
      }
      if (reason && !stop_reason_) stop_reason_ = reason;
    }
    released = std::move(batch->handle);
    batches_in_flight_.erase(batch);
    changed();
  }

 private:
  // Posts batches while fewer than about two are outstanding (all of them for join).
  void feed(bool all) {
    while (!input_done_) {
      {
        std::lock_guard<std::mutex> guard(mutex_);
        if (stopping_ || failed_ || stop_reason_) {
          input_done_ = true;
          return;
        }
        if (!all && outstanding_ > batch_items_ / chunksize_) return;
      }
      std::exception_ptr error;
      auto batch = input_.next_batch(batch_items_, chunksize_, error);
      if (error || batch.count < batch_items_) input_done_ = true;
      if (error) input_error_ = error;
      if (batch.count > 0) post(std::move(batch));
    }
  }

  void post(typename Input::InputBatch batch) {
    const std::size_t first = posted_chunks_;
    const auto chunks = static_cast<std::size_t>(chunk_count(batch.count, chunksize_));
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if constexpr (kOrdered) {
        for (std::size_t c = 0; c < chunks; ++c) pending_.emplace_back().index = first + c;
      }
      outstanding_ += chunks;
      Batch& batch = batches_in_flight_.emplace_back();
      batch.first_chunk = first;
      batch.chunks = chunks;
      batch.reported.resize(chunks);
    }
    posted_chunks_ += chunks;
    try {
      Handle handle = batches_.post(input_, std::move(batch), first, chunksize_, *this);
      std::lock_guard<std::mutex> guard(mutex_);
      for (Batch& live : batches_in_flight_) {
        if (live.first_chunk == first) live.handle.emplace(std::move(handle));
      }
    } catch (...) {
      // The pool stopped (join, terminate): the stream ends where this batch begins. A first
      // batch that cannot exist (its size, the memory it needs) fails the call itself.
      input_done_ = true;
      ended(first, std::current_exception());
      if (first == 0) throw;
    }
  }

  void report(std::size_t chunk, std::vector<Piece>&& pieces, std::exception_ptr error) {
    std::lock_guard<std::mutex> guard(mutex_);
    const auto batch = std::find_if(
        batches_in_flight_.begin(), batches_in_flight_.end(),
        [&](const Batch& b) { return chunk >= b.first_chunk && chunk - b.first_chunk < b.chunks; });
    // A chunk is reported once: a worker that died after its chunk finished does not fail it.
    if (batch == batches_in_flight_.end() || batch->reported[chunk - batch->first_chunk]) return;
    batch->reported[chunk - batch->first_chunk] = true;
    ++batch->reports;
    Chunk* slot = nullptr;
    if constexpr (kOrdered) {
      slot = &pending_[chunk - consumed_];
    } else {
      slot = &finished_.emplace_back();
    }
    slot->status = error ? Chunk::Status::kFailed : Chunk::Status::kDone;
    slot->index = chunk;
    slot->pieces = std::move(pieces);
    slot->error = std::move(error);
    if (slot->error) failed_ = true;
    changed();
  }

  // Under the mutex: moves the results at the head of the stream into out; returns the failure
  // met there, if any.
  std::exception_ptr take_finished(std::vector<Out>& out) {
    std::deque<Chunk>& queue = kOrdered ? pending_ : finished_;
    while (!queue.empty() && queue.front().status != Chunk::Status::kRunning) {
      if (queue.front().status == Chunk::Status::kDropped) {
        return queue.front().error ? queue.front().error
                                   : std::make_exception_ptr(PoolNotRunning(
                                         "pool: the pool dropped this stream's work"));
      }
      Chunk chunk = std::move(queue.front());
      queue.pop_front();
      if constexpr (kOrdered) ++consumed_;
      --outstanding_;
      if (chunk.error) return chunk.error;
      if constexpr (kOrdered) {
        // A large chunk is handed over as it is: no copy, and no fresh pages to touch.
        if (out.empty() && chunk.pieces.size() > out.capacity()) {
          out.swap(chunk.pieces);
          continue;
        }
      }
      for (std::size_t k = 0; k < chunk.pieces.size(); ++k) {
        if constexpr (kOrdered) {
          out.push_back(std::move(chunk.pieces[k]));
        } else {
          out.emplace_back(chunk.index * chunksize_ + k, std::move(chunk.pieces[k]));
        }
      }
    }
    return nullptr;
  }

  // Under the mutex (released meanwhile): cancels every posted batch not cancelled yet.
  void cancel_all(std::unique_lock<std::mutex>& guard) {
    std::vector<Handle> handles;
    for (Batch& batch : batches_in_flight_) {
      if (batch.handle && !batch.cancelled) {
        batch.cancelled = true;
        handles.push_back(*batch.handle);
      }
    }
    if (handles.empty()) return;
    guard.unlock();
    for (Handle& handle : handles) batches_.cancel(handle);
    guard.lock();
  }

  // Under the mutex (released meanwhile): until ready() holds, checked under the mutex.
  template <class Ready>
  void wait(std::unique_lock<std::mutex>& guard, Ready ready) {
    if constexpr (Batches::kReportsFromThreads) {
      while (!ready()) {
        if (current_wait_hook == nullptr) {
          changed_.wait(guard);
        } else {
          changed_.wait_for(guard, kWaitHookPeriod);
          guard.unlock();
          run_wait_hook();
          guard.lock();
        }
      }
    } else {
      guard.unlock();
      batches_.drive_until([this, &ready] {
        std::lock_guard<std::mutex> lock(mutex_);
        return ready();
      });
      guard.lock();
    }
  }

  // Under the mutex: the reader has something to do.
  bool reader_ready() const {
    if ((failed_ && !failure_handled_) || outstanding_ == 0) return true;
    if constexpr (kOrdered) {
      return !pending_.empty() && pending_.front().status != Chunk::Status::kRunning;
    } else {
      return !finished_.empty();
    }
  }

  void changed() { changed_.notify_all(); }

  typename std::list<Batch>::iterator find_batch(std::size_t first_chunk) {
    return std::find_if(batches_in_flight_.begin(), batches_in_flight_.end(),
                        [&](const Batch& batch) { return batch.first_chunk == first_chunk; });
  }

  // Posts nothing more, cancels the chunks not started, waits for the running ones.
  void stop() {
    std::unique_lock<std::mutex> guard(mutex_);
    stopping_ = true;
    try {
      cancel_all(guard);
      wait(guard, [this] { return batches_in_flight_.empty(); });
    } catch (...) {
      // The pool was interrupted, terminated or destroyed meanwhile: it stopped its workers.
    }
  }

  Batches batches_;
  Input input_;
  const std::size_t chunksize_;
  const std::size_t batch_items_;

  // The reader's thread only.
  bool input_done_ = false;
  std::size_t posted_chunks_ = 0;
  std::exception_ptr input_error_;
  std::exception_ptr deferred_;

  // Shared with the backend's reports.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Chunk> pending_;       // ordered: chunks [consumed_, posted_chunks_)
  std::deque<Chunk> finished_;      // unordered: reported chunks in completion order
  std::size_t consumed_ = 0;        // ordered: chunks handed to the reader
  std::size_t outstanding_ = 0;     // chunks posted, neither handed to the reader nor dropped
  bool failed_ = false;             // a chunk failed: the stream ends there
  bool failure_handled_ = false;    // the reader cancelled the rest after it
  bool stopping_ = false;           // the stream is going away
  std::exception_ptr stop_reason_;  // the pool dropped chunks: terminate(), join()
  std::list<Batch> batches_in_flight_;
};

// A stream of f's results over `inputs`, owning them when they are an rvalue.
template <class Out, bool kOrdered, class Batches, class Inputs>
ResultStream<Out> make_stream(Batches batches, Inputs&& inputs, std::size_t chunksize) {
  return ResultStream<Out>(std::make_unique<StreamEngine<Batches, Inputs, Out, kOrdered>>(
      std::move(batches), std::forward<Inputs>(inputs), chunksize));
}

// map_reduce: the chunks' folded values, folded in input order with op(T, T). inputs are used in
// place.
template <class Batches, class Inputs, class Op, class T>
T fold_stream(Batches batches, Inputs& inputs, std::size_t chunksize, Op& op, T init) {
  StreamEngine<Batches, Inputs&, T, true> partials(std::move(batches), inputs, chunksize);
  T total = std::move(init);
  std::vector<T> batch;
  while (partials.next_batch(batch)) {
    for (T& partial : batch) total = std::invoke(op, std::move(total), std::move(partial));
    batch.clear();
  }
  return total;
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_STREAM_ENGINE_H_
