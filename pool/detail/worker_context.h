// What a job template sees inside a worker process: the job, the chunk cursor, the arena, and the
// worker's result buffer. Hot-path calls are inline and touch shared memory only.
#ifndef POOL_DETAIL_WORKER_CONTEXT_H_
#define POOL_DETAIL_WORKER_CONTEXT_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <ostream>
#include <streambuf>

#include "pool/detail/protocol.h"

namespace pool::detail {

// A worker's result buffer in shared memory, as a stream. When it is full it asks `grow` for a
// larger one (the parent hands over a new segment; the content moves along), so results of any
// size fit without a pipe ever carrying them.
class ResultBuffer : public std::streambuf {
 public:
  // grow(bytes) must call reset() with a buffer of at least `bytes` holding the content so far.
  explicit ResultBuffer(std::function<void(std::size_t)> grow) : grow_(std::move(grow)) {}

  void reset(std::byte* base, std::size_t capacity, std::size_t position) {
    char* begin = reinterpret_cast<char*>(base);
    setp(begin, begin + capacity);
    advance(position);
  }
  std::size_t position() const { return static_cast<std::size_t>(pptr() - pbase()); }
  std::size_t capacity() const { return static_cast<std::size_t>(epptr() - pbase()); }

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    const auto count = static_cast<std::size_t>(n);
    if (position() + count > capacity()) grow_(position() + count);
    std::memcpy(pptr(), s, count);
    advance(count);
    return n;
  }
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    const char byte = traits_type::to_char_type(c);
    xsputn(&byte, 1);
    return c;
  }

 private:
  // pbump takes an int; positions may exceed 2 GiB.
  void advance(std::size_t count) {
    while (count > 0) {
      const std::size_t step = std::min<std::size_t>(count, 1u << 30);
      pbump(static_cast<int>(step));
      count -= step;
    }
  }

  std::function<void(std::size_t)> grow_;
};

class WorkerContext {
 public:
  WorkerContext(ControlBlock* control, std::uint32_t index, std::byte* arena, ResultBuffer* results,
                std::function<void(std::int64_t, std::exception_ptr)> fail)
      : control_(control),
        slot_(control->slots() + index),
        index_(index),
        arena_(arena),
        results_(results),
        result_stream_(results),
        fail_(std::move(fail)) {}

  const JobDescriptor& job() const { return control_->job; }
  std::byte* arena() const { return arena_; }
  std::uint32_t index() const { return index_; }

  // Takes the next chunk; false when none are left or the call was cancelled.
  bool next_chunk(std::uint64_t& chunk) {
    if (control_->cancelled.load(std::memory_order_relaxed) != 0) return false;
    chunk = control_->next_chunk.fetch_add(1, std::memory_order_relaxed);
    return chunk < control_->job.n_chunks;
  }
  // Recorded so that the parent can name the task if this worker dies running it.
  void set_current_item(std::int64_t item) {
    slot_->current_item.store(item, std::memory_order_relaxed);
  }

  std::ostream& result_stream() { return result_stream_; }
  std::size_t result_position() const { return results_->position(); }

  // Reports that the task for `item` threw; cancels the rest of the call.
  void fail_task(std::int64_t item, std::exception_ptr error) {
    control_->cancelled.store(1, std::memory_order_relaxed);
    fail_(item, std::move(error));
  }

 private:
  ControlBlock* control_;
  WorkerSlot* slot_;
  std::uint32_t index_;
  std::byte* arena_;
  ResultBuffer* results_;
  std::ostream result_stream_;
  std::function<void(std::int64_t, std::exception_ptr)> fail_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_WORKER_CONTEXT_H_
