#include "pool/trace.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

namespace pool {
namespace {

double seconds(std::int64_t ns) { return static_cast<double>(ns) / 1e9; }

bool is_work(SpanKind kind) {
  return kind == SpanKind::kRun || kind == SpanKind::kOverhead || kind == SpanKind::kGilWait;
}

double& part(WorkerStats& worker, SpanKind kind) {
  switch (kind) {
    case SpanKind::kRun:
      return worker.run;
    case SpanKind::kGilWait:
      return worker.gil_wait;
    case SpanKind::kOverhead:
      return worker.overhead;
    case SpanKind::kStartup:
      return worker.startup;
    case SpanKind::kShutdown:
      break;
  }
  return worker.shutdown;
}

std::string percent(double part, double whole) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(1) << (whole > 0 ? 100 * part / whole : 0.0) << "%";
  return text.str();
}

}  // namespace

const char* category(SpanKind kind) {
  switch (kind) {
    case SpanKind::kRun:
      return "run";
    case SpanKind::kGilWait:
      return "gil_wait";
    case SpanKind::kOverhead:
      return "overhead";
    case SpanKind::kStartup:
      return "startup";
    case SpanKind::kShutdown:
      return "shutdown";
  }
  return "unknown";
}

double TraceStats::efficiency() const { return capacity() > 0 ? run / capacity() : 0; }

Trace::Trace(std::size_t events_per_worker) : events_per_worker_(events_per_worker) {}

TraceStats Trace::stats() const {
  TraceStats stats;
  stats.backend = backend_;
  stats.workers = workers_;
  stats.dropped_events = dropped_;
  std::int64_t end = end_ns_;
  if (!complete_) {
    end = start_ns_;
    for (const Span& span : spans_) end = std::max(end, span.end_ns);
  }
  stats.wall = seconds(end - start_ns_);
  stats.per_worker.resize(static_cast<std::size_t>(std::max(workers_, 0)));
  // When each worker last worked, and when the last of them did.
  std::vector<std::int64_t> last_work(stats.per_worker.size(), start_ns_);
  std::vector<std::set<std::pair<std::int64_t, std::int64_t>>> chunks(stats.per_worker.size());
  std::int64_t last_of_all = start_ns_;
  for (std::size_t w = 0; w < stats.per_worker.size(); ++w) {
    stats.per_worker[w].worker = static_cast<int>(w);
    stats.per_worker[w].wall = stats.wall;
  }
  // Each worker's spans in start order: where two overlap (a worker still closing its last
  // chunk's span when the pool starts stopping it, on a loaded machine), the time counts once, for
  // the earlier span, so the parts of a worker never exceed the wall time.
  std::vector<const Span*> ordered;
  ordered.reserve(spans_.size());
  for (const Span& span : spans_) {
    if (span.worker >= 0 && span.worker < workers_) ordered.push_back(&span);
  }
  std::stable_sort(ordered.begin(), ordered.end(), [](const Span* a, const Span* b) {
    return a->worker != b->worker ? a->worker < b->worker : a->start_ns < b->start_ns;
  });
  std::vector<std::int64_t> covered(stats.per_worker.size(), start_ns_);
  for (const Span* span_in_order : ordered) {
    const Span& span = *span_in_order;
    const auto w = static_cast<std::size_t>(span.worker);
    WorkerStats& worker = stats.per_worker[w];
    const std::int64_t from = std::max(span.start_ns, covered[w]);
    const std::int64_t to = std::min(span.end_ns, end);
    if (to > from) {
      part(worker, span.kind) += seconds(to - from);
      covered[w] = to;
    }
    if (span.kind == SpanKind::kStartup) last_work[w] = std::max(last_work[w], span.end_ns);
    if (is_work(span.kind)) {
      last_work[w] = std::max(last_work[w], span.end_ns);
      last_of_all = std::max(last_of_all, span.end_ns);
    }
    // A GIL pool cuts one chunk into several run spans: count it once.
    if (span.kind == SpanKind::kRun && chunks[w].emplace(span.job, span.chunk).second) {
      ++worker.tasks;
      worker.items += span.items;
    }
  }
  for (std::size_t w = 0; w < stats.per_worker.size(); ++w) {
    WorkerStats& worker = stats.per_worker[w];
    const double accounted =
        worker.run + worker.overhead + worker.gil_wait + worker.startup + worker.shutdown;
    worker.idle = std::max(0.0, stats.wall - accounted);
    worker.idle_at_end = std::clamp(seconds(last_of_all - last_work[w]), 0.0, worker.idle);
    stats.run += worker.run;
    stats.overhead += worker.overhead;
    stats.gil_wait += worker.gil_wait;
    stats.startup += worker.startup;
    stats.shutdown += worker.shutdown;
    stats.idle += worker.idle;
    stats.idle_at_end += worker.idle_at_end;
  }
  return stats;
}

std::ostream& operator<<(std::ostream& out, const TraceStats& stats) {
  std::ostringstream text;
  text << std::fixed;
  text << "Pool: " << stats.backend << ", " << stats.workers << " workers, wall "
       << std::setprecision(3) << stats.wall << " s, efficiency " << std::setprecision(2)
       << stats.efficiency() << " (run time / (workers x wall))\n";
  text << "worker    busy   run (s)    tasks        items\n";
  for (const WorkerStats& worker : stats.per_worker) {
    text << std::setw(6) << worker.worker << std::setw(8) << percent(worker.run, worker.wall)
         << std::setw(10) << std::setprecision(3) << worker.run << std::setw(9) << worker.tasks
         << std::setw(13) << worker.items << "\n";
  }
  const double capacity = stats.capacity();
  text << "Where the " << std::setprecision(3) << capacity << " worker-seconds went:\n";
  const auto line = [&](const char* name, double value, const std::string& note = "") {
    text << "  " << std::left << std::setw(10) << name << std::right << std::setw(10)
         << std::setprecision(3) << value << " s" << std::setw(8) << percent(value, capacity)
         << note << "\n";
  };
  line("run", stats.run);
  line("start-up", stats.startup);
  line("overhead", stats.overhead);
  line("GIL wait", stats.gil_wait);
  std::ostringstream imbalance;
  imbalance << std::fixed << std::setprecision(3)
            << "  (of which at the end, imbalance: " << stats.idle_at_end << " s)";
  line("idle", stats.idle, imbalance.str());
  line("shutdown", stats.shutdown);
  if (stats.dropped_events > 0) {
    text << "  (" << stats.dropped_events
         << " events were dropped: full buffers; raise Trace's events_per_worker)\n";
  }
  return out << text.str();
}

void Trace::write_chrome_json(std::ostream& out) const {
  using Json = nlohmann::ordered_json;
  const auto micros = [&](std::int64_t ns) { return static_cast<double>(ns - start_ns_) / 1e3; };
  Json events = Json::array();
  const auto name_row = [&](int tid, const std::string& name) {
    events.push_back(Json{{"ph", "M"},
                          {"name", "thread_name"},
                          {"pid", 1},
                          {"tid", tid},
                          {"args", {{"name", name}}}});
    events.push_back(Json{{"ph", "M"},
                          {"name", "thread_sort_index"},
                          {"pid", 1},
                          {"tid", tid},
                          {"args", {{"sort_index", tid}}}});
  };
  events.push_back(
      Json{{"ph", "M"},
           {"name", "process_name"},
           {"pid", 1},
           {"tid", 0},
           {"args", {{"name", backend_ + " pool, " + std::to_string(workers_) + " workers"}}}});
  name_row(0, "pool");
  for (int w = 0; w < workers_; ++w) name_row(w + 1, "worker " + std::to_string(w));
  for (const Span& span : spans_) {
    Json args = Json::object();
    if (span.job >= 0) args["job"] = span.job;
    if (span.chunk >= 0) args["chunk"] = span.chunk;
    if (span.first_item >= 0) args["first_item"] = span.first_item;
    if (span.chunk >= 0) args["items"] = span.items;
    events.push_back(Json{{"ph", "X"},
                          {"name", category(span.kind)},
                          {"cat", category(span.kind)},
                          {"pid", 1},
                          {"tid", span.worker + 1},
                          {"ts", micros(span.start_ns)},
                          {"dur", static_cast<double>(span.end_ns - span.start_ns) / 1e3},
                          {"args", std::move(args)}});
  }
  for (const OutputLine& line : output_) {
    Json args{{"line", line.text}};
    if (line.task >= 0) args["task"] = line.task;
    events.push_back(Json{{"ph", "i"},
                          {"name", "output"},
                          {"cat", "output"},
                          {"s", "t"},
                          {"pid", 1},
                          {"tid", line.worker + 1},
                          {"ts", micros(line.ns)},
                          {"args", std::move(args)}});
  }
  Json metadata{{"backend", backend_},        {"workers", workers_},
                {"dropped_events", dropped_}, {"events_per_worker", events_per_worker_},
                {"clock", "CLOCK_MONOTONIC"}, {"start_ns", start_ns_},
                {"end_ns", end_ns_}};
  if (!label_.empty()) metadata["example"] = label_;
  Json document{{"traceEvents", std::move(events)},
                {"displayTimeUnit", "ms"},
                {"metadata", std::move(metadata)}};
  out << document.dump() << "\n";
}

void Trace::save(const std::string& path) const {
  std::ofstream file(path);
  if (file) write_chrome_json(file);
  file.close();
  if (!file) {
    const int error = errno != 0 ? errno : EIO;
    throw std::system_error(error, std::generic_category(),
                            "pool: cannot write the trace file '" + path + "'");
  }
}

}  // namespace pool
