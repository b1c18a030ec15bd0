// pool::Trace: who ran what, when, on any pool, and where parallel efficiency was lost.
//
//   auto trace = std::make_shared<pool::Trace>();
//   {
//     pool::GilThreadPool workers(2, pool::GilThreadPool::kDefaultSwitchInterval, {.trace =
//     trace}); workers.map(partial_sum, intervals);
//   }                                   // the pool stopped: the trace is complete
//   trace->save("gil.json");            // open in Perfetto or chrome://tracing; tools/timeline
//   std::cout << trace->stats();        // busy %, efficiency, lost time by cause
//
// Contract
// - A pool given a trace (the `trace` option of ProcessPoolOptions, ThreadPoolOptions or
//   MpiPoolOptions) records into per-worker buffers allocated when it starts (in shared memory for
//   processes): no lock and no system call per event, all times on CLOCK_MONOTONIC. Without a
//   trace nothing is recorded. MPI ranks time their chunks on their own clocks and send the times
//   with their results; rank 0 shifts them by each rank's clock offset, measured when the pool
//   starts (see pool/mpi_pool.h).
// - Spans: `run` while a worker executes task code (on a GilThreadPool only while its thread holds
//   the lock, so run spans of different threads never overlap there); `gil_wait` while a GIL pool
//   thread that has work waits for the lock; `overhead` while a worker takes a chunk, decodes its
//   arguments, writes its results and publishes them; `startup` from the pool's construction (or a
//   replacement's fork) until the worker is ready; `shutdown` from the moment the pool stops its
//   workers until each one ended. A span carries its call (job), chunk, first input index and item
//   count. Time a worker spends otherwise is idle: waiting for work, or, on a GIL pool, blocked in
//   a call that released the lock (pool::gil::sleep_for).
// - The trace is filled when the pool stops its workers (join(), terminate() or its destructor);
//   until then spans() is empty. One trace records one pool; giving it to a second pool throws
//   std::logic_error.
// - Each worker keeps at most events_per_worker events; the rest are counted in dropped_events()
//   (and in the file's metadata), never silently lost.
// - Not thread-safe: read it from one thread once the pool stopped.
#ifndef POOL_TRACE_H_
#define POOL_TRACE_H_

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace pool {

namespace detail {
class TraceSession;
}  // namespace detail

enum class SpanKind : std::uint32_t {
  kRun = 0,
  kGilWait = 1,
  kOverhead = 2,
  kStartup = 3,
  kShutdown = 4,
};

// "run", "gil_wait", "overhead", "startup" or "shutdown": the span's category in trace files.
const char* category(SpanKind kind);

struct Span {
  SpanKind kind = SpanKind::kRun;
  int worker = -1;            // 0 .. workers - 1; -1: the pool itself (its caller)
  std::int64_t start_ns = 0;  // CLOCK_MONOTONIC
  std::int64_t end_ns = 0;
  std::int64_t job = -1;         // the call (an imap batch), in submission order; -1: none
  std::int64_t chunk = -1;       // the chunk of the call (Python's task); -1: none
  std::int64_t first_item = -1;  // input index of the chunk's first item; -1: none
  std::uint64_t items = 0;       // items in the chunk
};

// A line a task printed while the pool captured output (capture_output), where and when.
struct OutputLine {
  int worker = -1;
  std::int64_t ns = 0;     // CLOCK_MONOTONIC, when it was written
  std::int64_t task = -1;  // the input index of the task that wrote it; -1: none
  std::string text;        // without the label and the newline
};

// Seconds a worker spent in each state. The parts add up to the pool's wall time.
struct WorkerStats {
  int worker = 0;
  double wall = 0;  // the pool's
  double run = 0, overhead = 0, gil_wait = 0, startup = 0, shutdown = 0;
  double idle = 0;          // all the rest
  double idle_at_end = 0;   // of idle: after its last chunk, while another worker still ran one
  std::uint64_t tasks = 0;  // chunks run
  std::uint64_t items = 0;
  double busy() const { return wall > 0 ? run / wall : 0; }
};

// The pool's time, workers x wall, split by cause.
struct TraceStats {
  std::string backend;
  int workers = 0;
  double wall = 0;  // seconds from the pool's construction until its workers stopped
  double run = 0, overhead = 0, gil_wait = 0, startup = 0, shutdown = 0, idle = 0, idle_at_end = 0;
  std::uint64_t dropped_events = 0;
  std::vector<WorkerStats> per_worker;
  // (sum of run time) / (workers x wall).
  double efficiency() const;
  // workers x wall.
  double capacity() const { return wall * workers; }
};

// The table --stats prints.
std::ostream& operator<<(std::ostream& out, const TraceStats& stats);

class Trace {
 public:
  static constexpr std::size_t kDefaultEventsPerWorker = std::size_t{1} << 16;

  explicit Trace(std::size_t events_per_worker = kDefaultEventsPerWorker);

  std::size_t events_per_worker() const { return events_per_worker_; }
  // Shown in titles and the file's metadata ("example"), e.g. the program's name.
  void set_label(std::string label) { label_ = std::move(label); }
  const std::string& label() const { return label_; }

  // "process", "gil", "free" or "mpi"; empty until a pool started recording.
  const std::string& backend() const { return backend_; }
  int workers() const { return workers_; }
  // True once the pool stopped its workers and the spans were read.
  bool complete() const { return complete_; }
  std::int64_t start_ns() const { return start_ns_; }
  std::int64_t end_ns() const { return end_ns_; }

  // By worker (the pool's own spans first), then by start.
  const std::vector<Span>& spans() const { return spans_; }
  std::uint64_t dropped_events() const { return dropped_; }
  // Captured lines (capture_output), by worker, then by time; instant events ("ph": "i",
  // category "output") in the Chrome trace.
  const std::vector<OutputLine>& output() const { return output_; }

  TraceStats stats() const;

  // Chrome's Trace Event Format: {"traceEvents": [...], "metadata": {...}}, complete events
  // ("ph": "X") with ts and dur in microseconds from the pool's start, tid 0 for the pool and
  // tid w + 1 for worker w. Opens as is in Perfetto and chrome://tracing.
  void write_chrome_json(std::ostream& out) const;
  // write_chrome_json to a file; throws std::system_error naming the path if it cannot be written.
  void save(const std::string& path) const;

 private:
  friend class detail::TraceSession;

  std::size_t events_per_worker_;
  std::string label_;
  std::string backend_;
  int workers_ = 0;
  bool started_ = false;
  bool complete_ = false;
  std::int64_t start_ns_ = 0;
  std::int64_t end_ns_ = 0;
  std::vector<Span> spans_;
  std::vector<OutputLine> output_;
  std::uint64_t dropped_ = 0;
};

}  // namespace pool

#endif  // POOL_TRACE_H_
