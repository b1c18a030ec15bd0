#include "pool/detail/trace_session.h"

#include <algorithm>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace pool::detail {
namespace {

// Buffers start on their own cache lines so that workers never share one.
std::size_t stride_for(std::size_t capacity) {
  return (TraceBuffer::bytes_for(capacity) + 63) / 64 * 64;
}

}  // namespace

std::size_t TraceSession::bytes_for(const Trace& trace, int workers) {
  return stride_for(trace.events_per_worker()) * static_cast<std::size_t>(workers);
}

TraceSession::TraceSession(std::shared_ptr<Trace> trace, const char* backend, int workers,
                           std::int64_t start_ns, void* memory)
    : trace_(std::move(trace)), start_ns_(start_ns) {
  if (trace_->started_) {
    throw std::logic_error("pool: a pool::Trace records one pool; this one already recorded a " +
                           trace_->backend_ + " pool");
  }
  const std::size_t capacity = trace_->events_per_worker();
  const std::size_t stride = stride_for(capacity);
  if (memory == nullptr) {
    // calloc hands out fresh zero pages for a large block without touching them, so a pool's
    // start-up does not pay for buffers its workers may never fill.
    own_memory_.reset(std::calloc(stride * static_cast<std::size_t>(workers) + 64, 1));
    if (!own_memory_) throw std::bad_alloc();
    const auto address = reinterpret_cast<std::uintptr_t>(own_memory_.get());
    memory = static_cast<std::byte*>(own_memory_.get()) + ((64 - address % 64) % 64);
  }
  auto* bytes = static_cast<std::byte*>(memory);
  buffers_.reserve(static_cast<std::size_t>(workers));
  for (int w = 0; w < workers; ++w) {
    buffers_.emplace_back(bytes + stride * static_cast<std::size_t>(w), capacity);
  }
  ended_ns_.assign(static_cast<std::size_t>(workers), 0);
  trace_->started_ = true;
  trace_->backend_ = backend;
  trace_->workers_ = workers;
  trace_->start_ns_ = start_ns;
}

void TraceSession::shutdown_begins() {
  if (shutdown_ns_ == 0) shutdown_ns_ = monotonic_now_ns();
}

void TraceSession::worker_ended(int worker, std::int64_t ns) {
  ended_ns_[static_cast<std::size_t>(worker)] = ns;
}

void TraceSession::finish() {
  if (finished_) return;
  finished_ = true;
  const std::int64_t end = monotonic_now_ns();
  if (shutdown_ns_ == 0) shutdown_ns_ = end;
  Trace& trace = *trace_;
  std::vector<Span> spans;
  std::int64_t all_ready = 0;  // when the last of the first workers was ready
  for (std::size_t w = 0; w < buffers_.size(); ++w) {
    const TraceBuffer& buffer = buffers_[w];
    bool first_startup = true;
    for (std::uint64_t i = 0; i < buffer.recorded(); ++i) {
      const TraceEvent& event = buffer[i];
      if (event.kind == TraceKind::kOutput) {
        const std::uint64_t more = TraceBuffer::text_events(event.items);
        if (i + more >= buffer.recorded()) break;  // cut short (a killed worker)
        const char* text = reinterpret_cast<const char*>(&buffer[i + 1]);
        trace.output_.push_back(
            OutputLine{static_cast<int>(w), event.start_ns, event.job,
                       std::string(text, static_cast<std::size_t>(event.items))});
        i += more;
        continue;
      }
      Span span;
      span.kind = static_cast<SpanKind>(event.kind);
      span.worker = static_cast<int>(w);
      span.start_ns = event.start_ns;
      span.end_ns = std::max(event.start_ns, event.end_ns);
      span.job = event.job;
      span.chunk = event.chunk;
      span.first_item = event.first_item;
      span.items = event.items;
      if (span.kind == SpanKind::kStartup && first_startup) {
        all_ready = std::max(all_ready, span.end_ns);
        first_startup = false;
      }
      spans.push_back(span);
    }
    trace.dropped_ += buffer.dropped();
    // A worker that left its loop says when; one that was killed ended when it was reaped.
    std::int64_t stopped = buffer.stopped_ns();
    if (stopped < shutdown_ns_) stopped = ended_ns_[w];
    if (stopped >= shutdown_ns_) {
      Span shutdown;
      shutdown.kind = SpanKind::kShutdown;
      shutdown.worker = static_cast<int>(w);
      shutdown.start_ns = shutdown_ns_;
      shutdown.end_ns = std::min(stopped, end);
      spans.push_back(shutdown);
    }
  }
  if (all_ready > start_ns_) {
    Span startup;
    startup.kind = SpanKind::kStartup;
    startup.start_ns = start_ns_;
    startup.end_ns = all_ready;
    spans.push_back(startup);
  }
  Span shutdown;
  shutdown.kind = SpanKind::kShutdown;
  shutdown.start_ns = shutdown_ns_;
  shutdown.end_ns = end;
  spans.push_back(shutdown);
  std::stable_sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.worker != b.worker ? a.worker < b.worker : a.start_ns < b.start_ns;
  });
  trace.spans_ = std::move(spans);
  trace.end_ns_ = end;
  trace.complete_ = true;
}

}  // namespace pool::detail
