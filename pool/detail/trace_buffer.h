// One worker's trace events: a fixed array filled by that worker alone, so recording takes no lock
// and no system call (clock_gettime(CLOCK_MONOTONIC) is a vDSO read). It may live in shared memory
// (a process pool's workers) or on the heap (a thread pool's threads); the pool reads it once the
// worker stopped. A full buffer keeps counting, so the reader knows how many events it dropped.
#ifndef POOL_DETAIL_TRACE_BUFFER_H_
#define POOL_DETAIL_TRACE_BUFFER_H_

#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>

namespace pool::detail {

inline std::int64_t monotonic_now_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

// The values of pool::SpanKind, for code that must not include the public header.
enum class TraceKind : std::uint32_t {
  kRun = 0,
  kGilWait = 1,
  kOverhead = 2,
  kStartup = 3,
  // A line of captured output, not a span: start_ns when, job the task, items the text's length;
  // the text fills the next text_events(items) events.
  kOutput = 100,
};

struct TraceEvent {
  std::int64_t start_ns;
  std::int64_t end_ns;
  std::int64_t job;         // the call, in submission order; -1: none
  std::int64_t chunk;       // the chunk (Python's task) within the call; -1: none
  std::int64_t first_item;  // input index of the chunk's first item; -1: none
  std::uint64_t items;
  TraceKind kind;
  std::uint32_t reserved;
};

struct TraceHeader {
  std::atomic<std::uint64_t> count{0};  // events recorded, dropped ones included
  std::uint64_t capacity = 0;
  std::int64_t stopped_ns = 0;  // when the worker left its loop; 0: it did not (killed)
};

// A view of a header followed by `capacity` events. Only the owning worker records.
class TraceBuffer {
 public:
  static constexpr std::size_t bytes_for(std::size_t capacity) {
    return sizeof(TraceHeader) + capacity * sizeof(TraceEvent);
  }

  TraceBuffer() = default;
  // `memory` holds bytes_for(capacity) zeroed bytes, suitably aligned.
  TraceBuffer(void* memory, std::size_t capacity)
      : header_(new (memory) TraceHeader), events_(reinterpret_cast<TraceEvent*>(header_ + 1)) {
    header_->capacity = capacity;
  }
  // The buffer that another process set up in `memory` (shared), as it is: a worker that is not
  // a fork of its pool (bootstrap.h) records into it after its dead predecessor's events.
  static TraceBuffer attach(void* memory) {
    TraceBuffer buffer;
    buffer.header_ = static_cast<TraceHeader*>(memory);
    buffer.events_ = reinterpret_cast<TraceEvent*>(buffer.header_ + 1);
    return buffer;
  }
  // Its header: where attach() finds it.
  const void* memory() const { return header_; }
  std::uint64_t capacity() const { return header_->capacity; }

  void record(TraceKind kind, std::int64_t start_ns, std::int64_t end_ns, std::int64_t job,
              std::int64_t chunk, std::int64_t first_item, std::uint64_t items) {
    const std::uint64_t n = header_->count.load(std::memory_order_relaxed);
    if (n < header_->capacity) {
      events_[n] = TraceEvent{start_ns, end_ns, job, chunk, first_item, items, kind, 0};
    }
    // Counted after it is written: a worker killed in between leaves no torn event behind.
    header_->count.store(n + 1, std::memory_order_release);
  }
  static constexpr std::uint64_t text_events(std::uint64_t bytes) {
    return (bytes + sizeof(TraceEvent) - 1) / sizeof(TraceEvent);
  }
  // A captured line; its text is dropped (length 0) when the buffer has no room left for it.
  void record_text(std::int64_t ns, std::int64_t task, std::string_view text) {
    const std::uint64_t n = header_->count.load(std::memory_order_relaxed);
    const std::uint64_t more = text_events(text.size());
    const bool fits = n + 1 + more <= header_->capacity;
    if (n < header_->capacity) {
      events_[n] = TraceEvent{ns, ns, task, -1, -1, fits ? text.size() : 0, TraceKind::kOutput, 0};
      if (fits) std::memcpy(static_cast<void*>(events_ + n + 1), text.data(), text.size());
    }
    header_->count.store(n + 1 + (fits ? more : 0), std::memory_order_release);
  }
  void mark_stopped() { header_->stopped_ns = monotonic_now_ns(); }

  std::uint64_t recorded() const {
    const std::uint64_t n = header_->count.load(std::memory_order_acquire);
    return n < header_->capacity ? n : header_->capacity;
  }
  std::uint64_t dropped() const {
    const std::uint64_t n = header_->count.load(std::memory_order_acquire);
    return n > header_->capacity ? n - header_->capacity : 0;
  }
  const TraceEvent& operator[](std::size_t i) const { return events_[i]; }
  std::int64_t stopped_ns() const { return header_->stopped_ns; }

 private:
  TraceHeader* header_ = nullptr;
  TraceEvent* events_ = nullptr;
};

// Follows one worker through its chunks and records contiguous spans: the overhead before a chunk
// runs (taking it, decoding its arguments, finishing the previous one), the run itself (cut where a
// GIL pool thread gives its lock away, with the wait for it in between), and the overhead after
// the last chunk. Calls are cheap no-ops when `buffer` is null (tracing off).
class SpanRecorder {
 public:
  explicit SpanRecorder(TraceBuffer* buffer = nullptr) : buffer_(buffer) {}

  bool on() const { return buffer_ != nullptr; }
  TraceBuffer* buffer() const { return buffer_; }

  // Overhead starts now (a worker goes to take work).
  void start_overhead() {
    if (buffer_ != nullptr) overhead_since_ = monotonic_now_ns();
  }
  // The chunk that the following spans belong to.
  void set_chunk(std::int64_t job, std::int64_t chunk, std::int64_t first_item,
                 std::uint64_t items) {
    job_ = job;
    chunk_ = chunk;
    first_item_ = first_item;
    items_ = items;
  }
  // Task code starts: closes the overhead before it.
  void run_begins() {
    if (buffer_ == nullptr || running_) return;
    const std::int64_t now = monotonic_now_ns();
    if (overhead_since_ != 0) record(TraceKind::kOverhead, overhead_since_, now);
    run_since_ = now;
    running_ = true;
  }
  // Task code ended (its last item, or it threw): overhead follows.
  void run_ends() {
    if (buffer_ == nullptr || !running_) return;
    const std::int64_t now = monotonic_now_ns();
    record(TraceKind::kRun, run_since_, now);
    running_ = false;
    overhead_since_ = now;
  }
  // The worker has no more work for now: closes the open span.
  void idle() {
    if (buffer_ == nullptr) return;
    run_ends();
    if (overhead_since_ != 0) record(TraceKind::kOverhead, overhead_since_, monotonic_now_ns());
    overhead_since_ = 0;
  }

  // A GIL pool thread gives its lock away inside a task: the run span ends at `released_ns`.
  void lock_released(std::int64_t released_ns) {
    if (buffer_ == nullptr || !running_) return;
    record(TraceKind::kRun, run_since_, released_ns);
    running_ = false;
    paused_ = true;
  }
  // ... and has it again: it waited since `waited_since_ns`; the task runs on.
  void lock_taken(std::int64_t waited_since_ns) {
    if (buffer_ == nullptr || !paused_) return;
    const std::int64_t now = monotonic_now_ns();
    record(TraceKind::kGilWait, waited_since_ns, now);
    paused_ = false;
    running_ = true;
    run_since_ = now;
  }
  // A wait for the lock outside a task (a thread that just took a job).
  void gil_wait(std::int64_t since_ns, std::int64_t job) {
    if (buffer_ == nullptr) return;
    buffer_->record(TraceKind::kGilWait, since_ns, monotonic_now_ns(), job, -1, -1, 0);
  }

 private:
  void record(TraceKind kind, std::int64_t start, std::int64_t end) {
    buffer_->record(kind, start, end, job_, chunk_, first_item_, items_);
  }

  TraceBuffer* buffer_;
  std::int64_t overhead_since_ = 0;
  std::int64_t run_since_ = 0;
  bool running_ = false;
  bool paused_ = false;
  std::int64_t job_ = -1;
  std::int64_t chunk_ = -1;
  std::int64_t first_item_ = -1;
  std::uint64_t items_ = 0;
};

// The calling thread's recorder, on a thread pool's threads while tracing; null elsewhere.
inline SpanRecorder*& this_thread_recorder() {
  thread_local SpanRecorder* recorder = nullptr;
  return recorder;
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_TRACE_BUFFER_H_
