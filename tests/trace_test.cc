// pool::Trace on every pool: which spans are recorded, that they tell the truth about who ran
// what, the statistics built from them, and the Chrome trace file.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "pool/detail/trace_buffer.h"
#include "pool/detail/trace_session.h"
#include "pool/pool.h"
#include "tests/leak_check.h"
#include "tests/trace_checks.h"

namespace {

using Trace = pool::testing::NoLeftoversTest;
using pool::testing::expect_parts_add_up;
using pool::testing::overlap;
using pool::testing::spans_of;

pool::ProcessPoolOptions process_options(std::shared_ptr<pool::Trace> trace) {
  pool::ProcessPoolOptions options;
  options.trace = std::move(trace);
  return options;
}

pool::ThreadPoolOptions thread_options(std::shared_ptr<pool::Trace> trace) {
  pool::ThreadPoolOptions options;
  options.trace = std::move(trace);
  return options;
}

// CPU-bound for about `ms`, with GIL switch points, as a Python loop has.
double spin_for_ms(int ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  double x = 0;
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 1000; ++i) x += std::sqrt(static_cast<double>(i));
    pool::gil::checkpoint();
  }
  return x;
}

// Every (job, chunk) that ran, with its items, from the run spans.
std::map<std::pair<std::int64_t, std::int64_t>, std::uint64_t> chunks_run(
    const pool::Trace& trace) {
  std::map<std::pair<std::int64_t, std::int64_t>, std::uint64_t> chunks;
  for (const pool::Span& span : spans_of(trace, pool::SpanKind::kRun)) {
    chunks[{span.job, span.chunk}] = span.items;
  }
  return chunks;
}

TEST_F(Trace, ProcessPoolRecordsEveryChunkOnceWithItsItems) {
  auto trace = std::make_shared<pool::Trace>();
  {
    pool::ProcessPool workers(2, process_options(trace));
    const auto squares = workers.map([](long x) { return x * x; }, pool::range(0, 1000), 64);
    ASSERT_EQ(squares.size(), 1000u);
    EXPECT_FALSE(trace->complete());
    EXPECT_TRUE(trace->spans().empty());
  }
  ASSERT_TRUE(trace->complete());
  EXPECT_EQ(trace->backend(), "process");
  EXPECT_EQ(trace->workers(), 2);
  const auto chunks = chunks_run(*trace);
  ASSERT_EQ(chunks.size(), 16u);  // ceil(1000 / 64)
  std::uint64_t items = 0;
  std::int64_t chunk = 0;
  for (const auto& [key, count] : chunks) {
    EXPECT_EQ(key.second, chunk++);
    items += count;
  }
  EXPECT_EQ(items, 1000u);
  for (const pool::Span& span : trace->spans()) {
    EXPECT_LE(trace->start_ns(), span.start_ns);
    EXPECT_LE(span.start_ns, span.end_ns);
    EXPECT_LE(span.end_ns, trace->end_ns());
  }
}

TEST_F(Trace, ProcessPoolRunSpansOfOneWorkerNeverOverlapItsOverhead) {
  auto trace = std::make_shared<pool::Trace>();
  {
    pool::ProcessPool workers(2, process_options(trace));
    std::vector<std::string> words(200, "word");
    workers.map([](const std::string& s) { return s + "!"; }, words, 7);
  }
  for (int w = 0; w < 2; ++w) {
    std::vector<pool::Span> busy = spans_of(*trace, pool::SpanKind::kRun, w);
    const auto overhead = spans_of(*trace, pool::SpanKind::kOverhead, w);
    busy.insert(busy.end(), overhead.begin(), overhead.end());
    std::sort(busy.begin(), busy.end(),
              [](const auto& a, const auto& b) { return a.start_ns < b.start_ns; });
    for (std::size_t i = 1; i < busy.size(); ++i) {
      EXPECT_LE(busy[i - 1].end_ns, busy[i].start_ns) << "worker " << w << " span " << i;
    }
  }
  // Decoding strings and encoding results is overhead, recorded around the runs.
  EXPECT_FALSE(spans_of(*trace, pool::SpanKind::kOverhead).empty());
}

TEST_F(Trace, EveryWorkerHasAStartupAndAShutdownSpanAndSoDoesThePool) {
  for (const std::string backend : {"process", "gil", "free"}) {
    auto trace = std::make_shared<pool::Trace>();
    {
      if (backend == "process") {
        pool::ProcessPool workers(3, process_options(trace));
        workers.map([](int x) { return x; }, pool::range(0, 30));
      } else if (backend == "gil") {
        pool::GilThreadPool workers(3, pool::GilThreadPool::kDefaultSwitchInterval,
                                    thread_options(trace));
        workers.map([](int x) { return x; }, pool::range(0, 30));
      } else {
        pool::FreeThreadPool workers(3, thread_options(trace));
        workers.map([](int x) { return x; }, pool::range(0, 30));
      }
    }
    ASSERT_TRUE(trace->complete()) << backend;
    EXPECT_EQ(trace->backend(), backend);
    for (int w = -1; w < 3; ++w) {
      const auto startup = spans_of(*trace, pool::SpanKind::kStartup, w);
      const auto shutdown = spans_of(*trace, pool::SpanKind::kShutdown, w);
      ASSERT_EQ(startup.size(), 1u) << backend << " worker " << w;
      ASSERT_EQ(shutdown.size(), 1u) << backend << " worker " << w;
      EXPECT_EQ(startup[0].start_ns, trace->start_ns());
      EXPECT_LE(shutdown[0].end_ns, trace->end_ns());
    }
    // The pool's start-up ends when its last worker is ready.
    std::int64_t last_ready = 0;
    for (int w = 0; w < 3; ++w) {
      last_ready = std::max(last_ready, spans_of(*trace, pool::SpanKind::kStartup, w)[0].end_ns);
    }
    EXPECT_EQ(spans_of(*trace, pool::SpanKind::kStartup, -1)[0].end_ns, last_ready);
  }
}

TEST_F(Trace, GilPoolRunSpansNeverOverlapAndThreadsWaitForTheLock) {
  auto trace = std::make_shared<pool::Trace>();
  {
    pool::GilThreadPool workers(2, std::chrono::milliseconds(2), thread_options(trace));
    workers.map([](int) { return spin_for_ms(40); }, pool::range(0, 4), 1);
  }
  const auto runs = spans_of(*trace, pool::SpanKind::kRun);
  for (const auto& a : runs) {
    for (const auto& b : runs) {
      if (a.worker != b.worker) {
        EXPECT_FALSE(overlap(a, b));
      }
    }
  }
  // Two threads with work: each waits for the lock while the other holds it, and a task is cut
  // into several run spans where its thread handed the lock over.
  EXPECT_FALSE(spans_of(*trace, pool::SpanKind::kGilWait, 0).empty());
  EXPECT_FALSE(spans_of(*trace, pool::SpanKind::kGilWait, 1).empty());
  EXPECT_GT(runs.size(), chunks_run(*trace).size());
  EXPECT_EQ(chunks_run(*trace).size(), 4u);
  const pool::TraceStats stats = trace->stats();
  expect_parts_add_up(stats);
  std::uint64_t tasks = 0;
  for (const auto& worker : stats.per_worker) tasks += worker.tasks;
  EXPECT_EQ(tasks, 4u);
  // One lock: at most one thread's worth of run time.
  EXPECT_LE(stats.run, stats.wall);
  EXPECT_GT(stats.gil_wait, 0.0);
}

TEST_F(Trace, GilThreadsTakeTurnsEverySwitchIntervalUntilTheirTasksEnd) {
  // As CPython: two CPU-bound threads alternate, each holding the lock about one switch interval,
  // for as long as both have work; not just once.
  auto trace = std::make_shared<pool::Trace>();
  {
    pool::GilThreadPool workers(2, std::chrono::milliseconds(2), thread_options(trace));
    workers.map([](int) { return spin_for_ms(60); }, pool::range(0, 2), 1);
  }
  // About 60 ms of shared time in 2 ms turns: far more than one hand-over per thread.
  for (int w = 0; w < 2; ++w) {
    EXPECT_GE(spans_of(*trace, pool::SpanKind::kRun, w).size(), 5u) << "worker " << w;
    EXPECT_GE(spans_of(*trace, pool::SpanKind::kGilWait, w).size(), 5u) << "worker " << w;
  }
}

TEST_F(Trace, FreeThreadsAndProcessesRunAtOnceWhereGilThreadsTakeTurns) {
  // Sleeping tasks: run spans of the two workers overlap without any doubt on free threads and
  // processes; on the GIL pool the sleep releases the lock, so it is not run time there.
  auto sleepy = [](int) {
    pool::gil::sleep_for(std::chrono::milliseconds(60));
    return 0;
  };
  auto process_trace = std::make_shared<pool::Trace>();
  {
    pool::ProcessPool workers(2, process_options(process_trace));
    workers.map(sleepy, pool::range(0, 2), 1);
  }
  auto free_trace = std::make_shared<pool::Trace>();
  auto gil_trace = std::make_shared<pool::Trace>();
  {
    pool::FreeThreadPool workers(2, thread_options(free_trace));
    workers.map(sleepy, pool::range(0, 2), 1);
  }
  {
    pool::GilThreadPool workers(2, pool::GilThreadPool::kDefaultSwitchInterval,
                                thread_options(gil_trace));
    workers.map(sleepy, pool::range(0, 2), 1);
  }
  for (const auto* trace : {process_trace.get(), free_trace.get()}) {
    const auto a = spans_of(*trace, pool::SpanKind::kRun, 0);
    const auto b = spans_of(*trace, pool::SpanKind::kRun, 1);
    ASSERT_EQ(a.size(), 1u) << trace->backend();
    ASSERT_EQ(b.size(), 1u) << trace->backend();
    EXPECT_TRUE(overlap(a[0], b[0])) << trace->backend();
    EXPECT_GE(a[0].end_ns - a[0].start_ns, 60'000'000) << trace->backend();
  }
  for (const auto& span : spans_of(*gil_trace, pool::SpanKind::kRun)) {
    EXPECT_LT(span.end_ns - span.start_ns, 60'000'000);
  }
}

TEST_F(Trace, StatsAddUpAndNameTheImbalanceAtTheEnd) {
  auto trace = std::make_shared<pool::Trace>();
  {
    pool::ProcessPool workers(2, process_options(trace));
    // One long and one short task: the worker with the short one waits for the other at the end.
    workers.map([](int ms) { return spin_for_ms(ms); }, std::vector<int>{200, 20}, 1);
  }
  const pool::TraceStats stats = trace->stats();
  expect_parts_add_up(stats);
  EXPECT_EQ(stats.workers, 2);
  EXPECT_NEAR(stats.efficiency(), stats.run / (2 * stats.wall), 1e-12);
  const auto& a = stats.per_worker[0];
  const auto& b = stats.per_worker[1];
  const auto& shorter = a.run < b.run ? a : b;
  const auto& longer = a.run < b.run ? b : a;
  EXPECT_EQ(a.tasks + b.tasks, 2u);
  EXPECT_EQ(a.items + b.items, 2u);
  EXPECT_GE(longer.run, 0.19);
  // The short worker idles about 180 ms at the end; the long one not at all.
  EXPECT_GE(shorter.idle_at_end, 0.15);
  EXPECT_LT(longer.idle_at_end, 0.02);
  EXPECT_NEAR(stats.idle_at_end, a.idle_at_end + b.idle_at_end, 1e-12);
  std::ostringstream table;
  table << stats;
  EXPECT_NE(table.str().find("efficiency"), std::string::npos);
  EXPECT_NE(table.str().find("imbalance"), std::string::npos);
}

TEST_F(Trace, OverlappingSpansOfOneWorkerCountOnceSoTheStatsStillAddUp) {
  // On a loaded machine a worker may still be closing its last span when the pool starts stopping
  // it. Such overlaps count once, for the earlier span.
  auto trace = std::make_shared<pool::Trace>();
  constexpr std::int64_t kMs = 1'000'000;
  const std::int64_t start = pool::detail::monotonic_now_ns() - 1000 * kMs;
  {
    pool::detail::TraceSession session(trace, "free", 1, start);
    pool::detail::TraceBuffer& buffer = *session.buffer(0);
    buffer.record(pool::detail::TraceKind::kStartup, start, start + 10 * kMs, -1, -1, -1, 0);
    buffer.record(pool::detail::TraceKind::kRun, start + 20 * kMs, start + 120 * kMs, 0, 0, 0, 1);
    // Overhead from 100 ms to 150 ms: only its last 30 ms are not run time already.
    buffer.record(pool::detail::TraceKind::kOverhead, start + 100 * kMs, start + 150 * kMs, 0, 0, 0,
                  1);
    session.finish();
  }
  const pool::TraceStats stats = trace->stats();
  expect_parts_add_up(stats);
  EXPECT_NEAR(stats.run, 0.100, 1e-9);
  EXPECT_NEAR(stats.overhead, 0.030, 1e-9);
  EXPECT_NEAR(stats.startup, 0.010, 1e-9);
  EXPECT_LE(stats.run + stats.overhead + stats.startup + stats.shutdown, stats.wall + 1e-9);
  // The spans themselves are kept as recorded.
  ASSERT_EQ(spans_of(*trace, pool::SpanKind::kOverhead).size(), 1u);
  EXPECT_EQ(spans_of(*trace, pool::SpanKind::kOverhead)[0].start_ns, start + 100 * kMs);
}

TEST_F(Trace, ChromeTraceFileHoldsCompleteEventsWithOneRowPerWorker) {
  auto trace = std::make_shared<pool::Trace>();
  trace->set_label("trace_test");
  {
    pool::FreeThreadPool workers(2, thread_options(trace));
    workers.map([](int x) { return x + 1; }, pool::range(0, 100), 10);
  }
  std::ostringstream file;
  trace->write_chrome_json(file);
  const auto document = nlohmann::json::parse(file.str());
  ASSERT_TRUE(document["traceEvents"].is_array());
  const std::set<std::string> categories{"run", "gil_wait", "overhead", "startup", "shutdown"};
  std::set<int> tids;
  std::size_t complete = 0;
  std::uint64_t items = 0;
  for (const auto& event : document["traceEvents"]) {
    if (event["ph"] != "X") continue;
    ++complete;
    EXPECT_EQ(categories.count(event["cat"].get<std::string>()), 1u) << event.dump();
    EXPECT_GE(event["ts"].get<double>(), 0.0);
    EXPECT_GE(event["dur"].get<double>(), 0.0);
    tids.insert(event["tid"].get<int>());
    if (event["cat"] == "run") items += event["args"]["items"].get<std::uint64_t>();
  }
  EXPECT_EQ(complete, trace->spans().size());
  EXPECT_EQ(tids, (std::set<int>{0, 1, 2}));
  EXPECT_EQ(items, 100u);
  EXPECT_EQ(document["metadata"]["backend"], "free");
  EXPECT_EQ(document["metadata"]["workers"], 2);
  EXPECT_EQ(document["metadata"]["example"], "trace_test");
  EXPECT_EQ(document["metadata"]["dropped_events"], 0);
}

TEST_F(Trace, AFullBufferCountsWhatItDropped) {
  auto trace = std::make_shared<pool::Trace>(8);
  {
    pool::ProcessPool workers(2, process_options(trace));
    workers.map([](int x) { return x; }, pool::range(0, 200), 1);
  }
  // 200 chunks make at least 400 events; 16 fit.
  EXPECT_GE(trace->dropped_events(), 400u - 16u);
  EXPECT_LE(spans_of(*trace, pool::SpanKind::kRun).size(), 16u);
  EXPECT_EQ(trace->stats().dropped_events, trace->dropped_events());
  std::ostringstream file;
  trace->write_chrome_json(file);
  EXPECT_EQ(nlohmann::json::parse(file.str())["metadata"]["dropped_events"],
            trace->dropped_events());
}

TEST_F(Trace, ATraceRecordsOnePool) {
  auto trace = std::make_shared<pool::Trace>();
  { pool::FreeThreadPool first(1, thread_options(trace)); }
  EXPECT_THROW(pool::ProcessPool(1, process_options(trace)), std::logic_error);
  EXPECT_THROW(pool::FreeThreadPool(1, thread_options(trace)), std::logic_error);
}

TEST_F(Trace, ReplacedAndFailingWorkersKeepTheirRow) {
  auto trace = std::make_shared<pool::Trace>();
  {
    pool::ProcessPoolOptions options = process_options(trace);
    options.maxtasksperchild = 2;
    pool::ProcessPool workers(1, options);
    workers.map([](int x) { return x; }, pool::range(0, 6), 1);
    EXPECT_THROW(workers.map(
                     [](int x) {
                       if (x == 1) throw std::runtime_error("no");
                       return x;
                     },
                     pool::range(0, 3), 1),
                 pool::TaskError);
  }
  ASSERT_TRUE(trace->complete());
  // Six chunks at two per worker: three workers in turn on row 0, each with its start-up.
  EXPECT_GE(spans_of(*trace, pool::SpanKind::kStartup, 0).size(), 3u);
  // The failing task's run span is closed, and the rest of the call still shows.
  const auto chunks = chunks_run(*trace);
  EXPECT_GE(chunks.size(), 6u + 2u);
  expect_parts_add_up(trace->stats());
}

TEST_F(Trace, SavingToAnUnwritablePathSaysWhich) {
  auto trace = std::make_shared<pool::Trace>();
  { pool::FreeThreadPool workers(1, thread_options(trace)); }
  try {
    trace->save("/nonexistent-dir/trace.json");
    FAIL() << "no error";
  } catch (const std::system_error& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent-dir/trace.json"), std::string::npos);
  }
  const std::string path = ::testing::TempDir() + "/trace_test.json";
  trace->save(path);
  std::ifstream saved(path);
  EXPECT_NO_THROW(nlohmann::json::parse(saved));
}

TEST_F(Trace, ImapAndApplySpansNameTheirInputIndices) {
  auto trace = std::make_shared<pool::Trace>();
  {
    pool::FreeThreadPool workers(2, thread_options(trace));
    std::uint64_t seen = 0;
    for (int value : workers.imap([](int x) { return x; }, std::vector<int>(50, 1), 5)) {
      seen += static_cast<std::uint64_t>(value);
    }
    EXPECT_EQ(seen, 50u);
    EXPECT_EQ(workers.apply([](int a, int b) { return a + b; }, 1, 2), 3);
  }
  std::set<std::int64_t> firsts;
  for (const auto& span : spans_of(*trace, pool::SpanKind::kRun)) {
    if (span.items == 5) firsts.insert(span.first_item);
  }
  EXPECT_EQ(firsts, (std::set<std::int64_t>{0, 5, 10, 15, 20, 25, 30, 35, 40, 45}));
  // apply is one more call of one item.
  EXPECT_EQ(chunks_run(*trace).size(), 11u);
}

}  // namespace
