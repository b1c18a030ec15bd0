// What a job template sees inside a worker process: the job, the chunk cursor, the arena, and the
// worker's result buffer. Hot-path calls are inline and touch shared memory only; the parent is
// woken through its socket only when it sleeps waiting for what just happened.
#ifndef POOL_DETAIL_PROCESS_WORKER_CONTEXT_H_
#define POOL_DETAIL_PROCESS_WORKER_CONTEXT_H_

#include <unistd.h>

#include <algorithm>
#include <cereal/archives/binary.hpp>
#include <cereal/types/string.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>

#include "pool/detail/exception_text.h"
#include "pool/detail/function_identity.h"
#include "pool/detail/process/code_map.h"
#include "pool/detail/process/memory_guard.h"
#include "pool/detail/process/protocol.h"
#include "pool/detail/process/pulled_results.h"
#include "pool/detail/task_failure.h"
#include "pool/detail/trace_buffer.h"

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
  void rewind() { setp(pbase(), epptr()); }
  std::size_t position() const { return static_cast<std::size_t>(pptr() - pbase()); }
  std::size_t capacity() const { return static_cast<std::size_t>(epptr() - pbase()); }
  // The stream writing here, made on first use: a stream's construction (its locale and facets)
  // costs a fresh worker page faults, and results that are trivially copyable need none.
  std::ostream& stream() {
    if (!stream_) stream_.emplace(this);
    return *stream_;
  }

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
  std::optional<std::ostream> stream_;
};

// How a worker reaches its parent outside shared memory.
class ParentLink {
 public:
  virtual ~ParentLink() = default;
  // Wakes the parent if it sleeps at a level this event concerns.
  virtual void notify(bool job_level_event) = 0;
};

// One worker's view of one job.
class WorkerContext {
 public:
  WorkerContext(ControlBlock* control, JobSlot* slot, std::uint32_t index, std::byte* arena,
                ResultBuffer* results, PulledResults* pulled, ParentLink* parent,
                std::uint64_t* chunks_left, MemoryGuard* memory, SpanRecorder* recorder,
                std::uint64_t position, const CodeMap* code_map = nullptr)
      : slot_(slot),
        me_(control->slots() + index),
        shares_(control->shares_of(position)),
        workers_(control->workers),
        index_(index),
        arena_(arena),
        results_(results),
        pulled_(pulled),
        parent_(parent),
        chunks_left_(chunks_left),
        memory_(memory),
        recorder_(recorder),
        position_(position),
        code_map_(code_map),
        timed_(control->task_timeout_ns != 0) {}

  const JobDescriptor& job() const { return slot_->job; }
  std::byte* arena() const { return arena_; }
  std::uint32_t index() const { return index_; }
  // Records this worker's spans when the pool is traced; its calls do nothing otherwise.
  SpanRecorder& recorder() const { return *recorder_; }
  bool tracing() const { return recorder_->on(); }
  // The job's position: its number in posting order.
  std::uint64_t position() const { return position_; }
  // Null in a fork of the pool's process, where the pool's code addresses hold as they are.
  const CodeMap* code_map() const { return code_map_; }

  // `chunk` failed before any of its tasks ran (its code is missing here).
  void fail_chunk(std::uint64_t chunk, std::exception_ptr error) {
    const JobDescriptor& job = slot_->job;
    fail_task(chunk, job.index_base + static_cast<std::int64_t>(chunk * job.chunksize),
              std::move(error));
  }

  // Takes the next chunk; false when none are left, the job was cancelled, or this worker is to be
  // replaced (it has run its maxtasksperchild, or outgrown max_memory_per_child).
  bool next_chunk(std::uint64_t& chunk) {
    const JobDescriptor& job = slot_->job;
    if (memory_->over()) *chunks_left_ = 0;
    if (*chunks_left_ == 0) return false;
    // A failure cancels the job too (its floor is stored first); with shares the chunks below it
    // still run.
    const bool cancelled = slot_->cancelled.load(std::memory_order_acquire) != 0;
    const std::uint64_t floor = slot_->failure_floor.load(std::memory_order_relaxed);
    if (cancelled && (job.shared_out == 0 || floor == kNoFailureFloor)) return false;
    me_->current_item.store(kTakingChunk, std::memory_order_relaxed);
    bool taken;
    if (job.shared_out != 0) {
      taken = take_chunk(shares_, workers_, index_, floor, chunk);
    } else {
      chunk = slot_->next_chunk.fetch_add(1, std::memory_order_relaxed);
      taken = chunk < job.n_chunks;
      if (taken && job.chunk_map_offset != 0) {
        chunk = reinterpret_cast<const std::uint32_t*>(arena_ + job.chunk_map_offset)[chunk];
      }
    }
    if (!taken) {
      // With completions still unpublished the worker stays "between chunks" until it publishes.
      if (unpublished_ == 0) me_->current_item.store(kNoItem, std::memory_order_relaxed);
      return false;
    }
    --*chunks_left_;
    return true;
  }

  // Recorded so that the parent can name the task if this worker dies running it or overruns.
  void set_current_item(std::int64_t item) {
    if (timed_) me_->item_started_ns.store(monotonic_ns(), std::memory_order_relaxed);
    me_->current_item.store(item, std::memory_order_relaxed);
  }

  // The stream for one chunk's serialized results; starts the buffer over when the parent has
  // read everything this worker wrote before.
  std::ostream& begin_record() {
    if (me_->records_produced.load(std::memory_order_relaxed) ==
        me_->records_consumed.load(std::memory_order_acquire)) {
      results_->rewind();
    }
    return results_->stream();
  }
  std::size_t result_position() const { return results_->position(); }
  // Space in this worker's own memory for `bytes` of one chunk's results, which the parent pulls
  // (JobDescriptor::pulled_results); end_pulled() records where they are.
  std::byte* begin_pulled(std::size_t bytes) {
    if (me_->records_produced.load(std::memory_order_relaxed) ==
        me_->records_consumed.load(std::memory_order_acquire)) {
      pulled_->rewind();
    }
    return pulled_->allocate(bytes);
  }
  void end_pulled(std::uint64_t chunk, const std::byte* data, std::size_t bytes) {
    auto* records = reinterpret_cast<ChunkRecord*>(arena_ + slot_->job.record_offset);
    records[chunk] = ChunkRecord{index_, kRecordWritten, reinterpret_cast<std::uint64_t>(data),
                                 bytes, static_cast<std::int64_t>(::getpid())};
    me_->records_produced.fetch_add(1, std::memory_order_release);
  }
  void end_record() {
    me_->records_end.store(results_->position(), std::memory_order_relaxed);
    me_->records_produced.fetch_add(1, std::memory_order_release);
  }

  // Counts `chunk` as finished; its results must be written before. Chunks of a job whose
  // completions are logged (imap, map_reduce) or that failed are published at once; others are
  // counted here and published together by publish_done(), so that single items cost one shared
  // counter (the cursor) and not two.
  void chunk_done(std::uint64_t chunk, bool failed = false) {
    const JobDescriptor& job = slot_->job;
    if (job.log_offset == 0 && !failed) {
      ++unpublished_;
      // Between chunks, holding completions nobody saw: a death now fails the job, naming no task.
      me_->current_item.store(kTakingChunk, std::memory_order_relaxed);
      return;
    }
    if (job.log_offset != 0) {
      auto* log = reinterpret_cast<std::atomic<std::uint32_t>*>(arena_ + job.log_offset);
      const std::uint64_t entry = slot_->log_cursor.fetch_add(1, std::memory_order_relaxed);
      log[entry].store(static_cast<std::uint32_t>(chunk + 1) | (failed ? kChunkFailedBit : 0u),
                       std::memory_order_release);
    }
    ++unpublished_;
    publish_done(failed);
  }

  // Publishes the chunks counted since the last call; the worker must call it before it leaves
  // the job (next_chunk returned false).
  void publish_done(bool failed = false) {
    if (unpublished_ == 0) return;
    const JobDescriptor& job = slot_->job;
    const std::uint64_t done =
        slot_->completed.fetch_add(unpublished_, std::memory_order_seq_cst) + unpublished_;
    unpublished_ = 0;
    me_->current_item.store(kNoItem, std::memory_order_relaxed);
    const bool job_level = done == job.n_chunks || job.notify_each_chunk != 0 || failed ||
                           slot_->cancelled.load(std::memory_order_seq_cst) != 0;
    parent_->notify(job_level);
  }

  // The task for `item` of `chunk` threw: records it, cancels the rest of the job, and finishes
  // the chunk as failed.
  void fail_task(std::uint64_t chunk, std::int64_t item, std::exception_ptr error) {
    const TaskFailure failure = TaskFailure::capture(item, std::move(error));
    std::ostream& out = begin_record();
    const std::size_t offset = result_position();
    {
      cereal::BinaryOutputArchive archive(out);
      archive(failure);
    }
    const std::size_t size = result_position() - offset;
    end_record();
    auto* failures = reinterpret_cast<WorkerFailure*>(arena_ + slot_->job.failure_offset);
    failures[index_].offset = offset;
    failures[index_].size = size;
    failures[index_].chunk_plus_one.store(chunk + 1, std::memory_order_release);
    std::uint64_t floor = slot_->failure_floor.load(std::memory_order_relaxed);
    while (chunk < floor && !slot_->failure_floor.compare_exchange_weak(floor, chunk)) {
    }
    slot_->cancelled.store(1, std::memory_order_seq_cst);
    chunk_done(chunk, true);
  }

  static std::int64_t monotonic_ns() { return monotonic_now_ns(); }

 private:
  JobSlot* slot_;
  WorkerSlot* me_;
  ChunkShare* shares_;
  std::uint64_t workers_;
  std::uint32_t index_;
  std::byte* arena_;
  ResultBuffer* results_;
  PulledResults* pulled_;
  ParentLink* parent_;
  std::uint64_t* chunks_left_;
  MemoryGuard* memory_;
  SpanRecorder* recorder_;
  std::uint64_t position_;
  const CodeMap* code_map_;
  bool timed_;
  std::uint64_t unpublished_ = 0;  // chunks finished here but not yet counted in the job slot
};

// A job's task function (or op), decoded in the worker: from its bytes, or, for a function pointer
// (or an adapter around one) sent to a worker that is not a fork, from its module and offset
// (encode_task; the parent's address means nothing here). When its module is not loaded here, the
// chunk fails as its first task and ok() is false.
template <class F>
class JobFunction {
 public:
  JobFunction(WorkerContext& context, std::uint64_t offset, std::uint64_t size,
              std::uint64_t chunk) {
    const std::byte* data = context.arena() + offset;
    if constexpr (kCarriesCodeAddress<F>) {
      if (context.code_map() != nullptr) {
        try {
          identified_.emplace(data, size);
        } catch (const std::exception& error) {
          context.fail_chunk(chunk, std::make_exception_ptr(std::logic_error(
                                        std::string(error.what()) +
                                        " (the task's type: " + demangle(typeid(F).name()) +
                                        "; loaded with dlopen after the worker started? use "
                                        "Start::fork, or link the library into the program)")));
        }
        return;
      }
    }
    bytes_.emplace(data, size);
  }

  bool ok() const {
    if constexpr (kCarriesCodeAddress<F>) {
      if (identified_) return true;
    }
    return bytes_.has_value();
  }
  F& get() {
    if constexpr (kCarriesCodeAddress<F>) {
      if (identified_) return identified_->get();
    }
    return bytes_->get();
  }

 private:
  std::optional<DecodedFunction<F>> bytes_;
  [[no_unique_address]] std::conditional_t<kCarriesCodeAddress<F>, std::optional<DecodedTask<F>>,
                                           std::monostate>
      identified_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_WORKER_CONTEXT_H_
