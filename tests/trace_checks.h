// What the trace tests of every pool share: picking spans out of a pool::Trace, and the check that
// its statistics add up to workers x wall time.
#ifndef TESTS_TRACE_CHECKS_H_
#define TESTS_TRACE_CHECKS_H_

#include <gtest/gtest.h>

#include <vector>

#include "pool/trace.h"

namespace pool::testing {

// The spans of one kind on one row (worker -1: the pool's own row).
inline std::vector<Span> spans_of(const Trace& trace, SpanKind kind, int worker) {
  std::vector<Span> out;
  for (const Span& span : trace.spans()) {
    if (span.kind == kind && span.worker == worker) out.push_back(span);
  }
  return out;
}

// The spans of one kind on every worker's row.
inline std::vector<Span> spans_of(const Trace& trace, SpanKind kind) {
  std::vector<Span> out;
  for (const Span& span : trace.spans()) {
    if (span.kind == kind && span.worker >= 0) out.push_back(span);
  }
  return out;
}

inline bool overlap(const Span& a, const Span& b) {
  return a.start_ns < b.end_ns && b.start_ns < a.end_ns;
}

// The pool's parts add up to workers x wall, and each worker's to the wall time, within 1%.
inline void expect_parts_add_up(const TraceStats& stats) {
  const double parts =
      stats.run + stats.overhead + stats.gil_wait + stats.startup + stats.shutdown + stats.idle;
  EXPECT_NEAR(parts, stats.capacity(), 0.01 * stats.capacity());
  EXPECT_LE(stats.idle_at_end, stats.idle + 1e-12);
  for (const WorkerStats& worker : stats.per_worker) {
    const double own = worker.run + worker.overhead + worker.gil_wait + worker.startup +
                       worker.shutdown + worker.idle;
    EXPECT_NEAR(own, stats.wall, 0.01 * stats.wall) << "worker " << worker.worker;
  }
}

}  // namespace pool::testing

#endif  // TESTS_TRACE_CHECKS_H_
