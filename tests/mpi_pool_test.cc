// pool::MpiPool under mpirun (tests/mpi_run.sh runs it on 3 ranks and on 1). Only rank 0 runs
// the tests: the other ranks serve every pool from the first line of main. The contract every
// pool shares is the typed suite of tests/pool_contract.h, instantiated here; the tests below are
// MpiPool's own (ranks, one pool at a time, traces).
#include "pool/mpi_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "examples/slow_series.h"
#include "pool/errors.h"
#include "pool/pool_concept.h"
#include "pool/range.h"
#include "pool/trace.h"
#include "tests/pool_contract.h"
#include "tests/pool_types.h"
#include "tests/trace_checks.h"

namespace pool::testing {
namespace {

// Instantiated in this binary, so every rank registers the suite's task types when it starts.
INSTANTIATE_TYPED_TEST_SUITE_P(Mpi, PoolContract, ::testing::Types<MpiPool>, PoolName);

}  // namespace
}  // namespace pool::testing

namespace {

using examples::DigitMethod;

static_assert(pool::Pool<pool::MpiPool>, "code written against pool::Pool runs on MpiPool");

int expected_workers() { return std::max(1, pool::MpiPool::world_size() - 1); }

long square(long x) { return x * x; }

TEST(MpiPool, UsesEveryRankButRankZeroAsAWorker) {
  pool::MpiPool workers;
  EXPECT_EQ(pool::MpiPool::rank(), 0);
  EXPECT_EQ(workers.size(), expected_workers());
}

TEST(MpiPool, SlowSeriesOverIntervalsEqualsTheSerialSumAndProcessPoolPartition) {
  constexpr std::int64_t kN = 1'000'000;
  pool::MpiPool workers;
  const double serial = examples::slow_series_partial_sum({1, kN}, DigitMethod::kInteger);
  double partitioned = 0.0;  // the same intervals summed in one process
  for (const auto& interval : examples::partition(kN, workers.size())) {
    partitioned += examples::slow_series_partial_sum(interval, DigitMethod::kInteger);
  }
  const double sum = examples::slow_series_sum(workers, kN, DigitMethod::kInteger);
  EXPECT_EQ(sum, partitioned);
  EXPECT_NEAR(sum, serial, 1e-12 * serial);
  const double folded =
      workers.map_reduce(examples::SlowSeriesTerm{DigitMethod::kInteger},
                         pool::range(std::int64_t{1}, kN + 1), std::plus<>(), 0.0);
  EXPECT_NEAR(folded, serial, 1e-12 * serial);
}

TEST(MpiPool, ARankThatFinishesGetsTheNextChunk) {
  if (expected_workers() < 2) GTEST_SKIP() << "needs two worker ranks";
  pool::MpiPool workers;
  // Item 0 is slow; the other rank should run nearly everything else meanwhile.
  const auto ranks = workers.map(
      [](int item) {
        std::this_thread::sleep_for(std::chrono::milliseconds(item == 0 ? 600 : 5));
        return pool::MpiPool::rank();
      },
      pool::range(0, 40), 1);
  std::map<int, int> items_per_rank;
  for (int rank : ranks) ++items_per_rank[rank];
  EXPECT_NE(ranks[0], 0);
  EXPECT_LE(items_per_rank[ranks[0]], static_cast<int>(pool::detail::MpiPoolCore::kChunksPerRank));
  EXPECT_EQ(items_per_rank.size(), 2u);
}

// Kept per pool. In a job of one rank, rank 0 runs the tasks inside ready(), wait(timeout) and
// get(timeout): each returns after a whole chunk, and get(timeout) gives the value where the other
// pools throw TimeoutError. That difference is not pinned here.
TEST(MpiPool, GetWithATimeoutThrowsTimeoutErrorWhileTheRanksWork) {
  if (pool::MpiPool::world_size() < 2) GTEST_SKIP() << "rank 0 would run the task itself";
  pool::MpiPool workers;
  auto slow = workers.apply_async(
      [](int ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        return ms;
      },
      1000);
  EXPECT_THROW(slow.get(std::chrono::milliseconds(10)), pool::TimeoutError);
  EXPECT_FALSE(slow.wait(std::chrono::milliseconds(1)));
  EXPECT_FALSE(slow.ready());
  EXPECT_THROW(slow.successful(), std::logic_error);
  EXPECT_EQ(slow.get(), 1000);
}

// A terminated pool drops the results of chunks still running on the ranks: none of them reaches
// the next pool.
TEST(MpiPool, ANewPoolWorksAfterOneTerminatedWithChunksOut) {
  {
    pool::MpiPool workers;
    auto slow = workers.map_async(
        [](int x) {
          usleep(20000);
          return x;
        },
        pool::range(0, 200), 1);
    EXPECT_FALSE(slow.wait(std::chrono::milliseconds(30)));  // hands chunks out
    workers.terminate();
    EXPECT_THROW(slow.get(), pool::PoolNotRunning);
  }
  pool::MpiPool again;
  EXPECT_EQ(again.map(square, pool::range(0L, 3L)), (std::vector<long>{0, 1, 4}));
  EXPECT_EQ(again.map([](int x) { return -x; }, pool::range(0, 200), 1), [] {
    std::vector<int> negated;
    for (int x = 0; x < 200; ++x) negated.push_back(-x);
    return negated;
  }());
}

TEST(MpiPool, OnePoolAtATimeAndNoMoreWorkersThanRanks) {
  {
    pool::MpiPool workers;
    EXPECT_THROW(pool::MpiPool second, std::logic_error);
  }
  EXPECT_THROW(pool::MpiPool(expected_workers() + 1), std::invalid_argument);
  EXPECT_THROW(pool::MpiPool(-1), std::invalid_argument);
  pool::MpiPool one(1);
  EXPECT_EQ(one.size(), 1);
  EXPECT_EQ(one.map(square, pool::range(0L, 20L), 1).size(), 20u);
}

[[gnu::noinline]] int throw_on_a_worker_rank(int x) {
  if (x == 3) throw std::runtime_error("thrown on purpose");
  return x;
}

// Recorded where the task threw, on the worker rank, and carried back to rank 0 in the TaskError.
TEST(MpiPool, ATaskErrorFromAWorkerRankCarriesTheStackWhereItWasThrown) {
  pool::MpiPool workers;
  try {
    workers.map(throw_on_a_worker_rank, pool::range(0, 8), 1);
    FAIL() << "map returned although a task threw";
  } catch (const pool::TaskError& error) {
    EXPECT_EQ(error.task_index(), 3);
    EXPECT_NE(error.stack_trace().find("throw_on_a_worker_rank"), std::string::npos)
        << error.stack_trace();
  }
}

TEST(MpiPool, ImpossibleSizesAreRefusedAtTheCallAndThePoolGoesOn) {
  pool::MpiPool workers;
  EXPECT_THROW(workers.map(square, pool::range(0L, 1L << 62)), std::length_error);
  try {
    workers.map(square, pool::range(0L, 1L << 40), 1);
    ADD_FAILURE() << "a map of 2^40 results was accepted";
  } catch (const pool::OutOfMemory& error) {
    EXPECT_GE(error.requested_bytes(), std::uint64_t{8} << 40);
  }
  EXPECT_EQ(workers.map(square, pool::range(0L, 5L), std::numeric_limits<std::size_t>::max()),
            (std::vector<long>{0, 1, 4, 9, 16}));
  std::vector<long> first;
  for (long value : workers.imap(square, pool::range(0L, 1L << 62))) {
    first.push_back(value);
    if (first.size() == 3) break;
  }
  EXPECT_EQ(first, (std::vector<long>{0, 1, 4}));
  EXPECT_EQ(workers.map(square, pool::range(0L, 3L)), (std::vector<long>{0, 1, 4}));
}

// ---------------------------------------------------------------------------------------------
// Tracing: the same timeline as on the other pools, one row per worker rank.

pool::MpiPoolOptions traced(std::shared_ptr<pool::Trace> trace) {
  pool::MpiPoolOptions options;
  options.trace = std::move(trace);
  return options;
}

using pool::testing::expect_parts_add_up;
using pool::testing::spans_of;

// A map of square over [0, 1000) in chunks of 5 on every worker rank, traced.
std::shared_ptr<pool::Trace> traced_map() {
  auto trace = std::make_shared<pool::Trace>();
  pool::MpiPool workers(0, traced(trace));
  EXPECT_EQ(workers.map(square, pool::range(0L, 1000L), 5).size(), 1000u);
  EXPECT_FALSE(trace->complete());
  EXPECT_TRUE(trace->spans().empty());
  return trace;
}

// Rank 0 has called MPI_Init, whose library starts threads of its own (Open MPI's PMIx and
// progress threads): a ProcessPool made now picks a start method that does not fork this process.
TEST(ProcessPoolAfterMpiInit, StartsWorkersThatAreNotForksAndMaps) {
  const auto threads = std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                                     std::filesystem::directory_iterator());
  pool::ProcessPool workers(2);
  EXPECT_EQ(workers.start_method(), threads > 1 ? pool::Start::forkserver : pool::Start::fork)
      << threads << " threads";
  EXPECT_EQ(workers.map([](long x) { return x * x; }, pool::range(0L, 5L)),
            (std::vector<long>{0, 1, 4, 9, 16}));
  pool::ProcessPoolOptions spawned;
  spawned.start = pool::Start::spawn;
  pool::ProcessPool spawned_workers(2, spawned);
  EXPECT_EQ(spawned_workers.map([](long x) { return x + 1; }, pool::range(0L, 3L)),
            (std::vector<long>{1, 2, 3}));
}

TEST(MpiPoolTrace, RecordsEveryChunkOnceWithItsItems) {
  const auto trace = traced_map();
  ASSERT_TRUE(trace->complete());
  EXPECT_EQ(trace->backend(), "mpi");
  EXPECT_EQ(trace->workers(), expected_workers());
  std::map<std::int64_t, pool::Span> chunks;
  for (const pool::Span& span : spans_of(*trace, pool::SpanKind::kRun)) {
    EXPECT_TRUE(chunks.emplace(span.chunk, span).second) << "chunk " << span.chunk << " twice";
    EXPECT_GE(span.worker, 0);
    EXPECT_LT(span.worker, expected_workers());
  }
  ASSERT_EQ(chunks.size(), 200u);
  std::uint64_t items = 0;
  std::int64_t expected_chunk = 0;
  for (const auto& [chunk, span] : chunks) {
    EXPECT_EQ(chunk, expected_chunk++);
    EXPECT_EQ(span.first_item, 5 * chunk);
    EXPECT_EQ(span.items, 5u);
    EXPECT_EQ(span.job, chunks.begin()->second.job);
    items += span.items;
  }
  EXPECT_EQ(items, 1000u);
}

TEST(MpiPoolTrace, EachRanksSpansFollowOneAnotherWithinTheTrace) {
  const auto trace = traced_map();
  for (const pool::Span& span : trace->spans()) {
    EXPECT_LE(trace->start_ns(), span.start_ns);
    EXPECT_LE(span.start_ns, span.end_ns);
    EXPECT_LE(span.end_ns, trace->end_ns());
  }
  for (int w = 0; w < expected_workers(); ++w) {
    std::vector<pool::Span> busy = spans_of(*trace, pool::SpanKind::kRun, w);
    const auto overhead = spans_of(*trace, pool::SpanKind::kOverhead, w);
    EXPECT_FALSE(busy.empty()) << "worker " << w;
    busy.insert(busy.end(), overhead.begin(), overhead.end());
    std::sort(busy.begin(), busy.end(), [](const pool::Span& a, const pool::Span& b) {
      return a.start_ns != b.start_ns ? a.start_ns < b.start_ns : a.end_ns < b.end_ns;
    });
    for (std::size_t i = 1; i < busy.size(); ++i) {
      EXPECT_LE(busy[i - 1].end_ns, busy[i].start_ns) << "worker " << w << " span " << i;
    }
    // A rank works after its start-up and before its shutdown.
    EXPECT_LE(spans_of(*trace, pool::SpanKind::kStartup, w).at(0).end_ns, busy.front().start_ns);
    EXPECT_LE(busy.back().end_ns, spans_of(*trace, pool::SpanKind::kShutdown, w).at(0).start_ns);
  }
}

TEST(MpiPoolTrace, EveryRankAndThePoolHaveAStartupAndAShutdownSpan) {
  const auto trace = traced_map();
  std::int64_t last_ready = 0;
  for (int w = -1; w < expected_workers(); ++w) {
    const auto startup = spans_of(*trace, pool::SpanKind::kStartup, w);
    const auto shutdown = spans_of(*trace, pool::SpanKind::kShutdown, w);
    ASSERT_EQ(startup.size(), 1u) << "worker " << w;
    ASSERT_EQ(shutdown.size(), 1u) << "worker " << w;
    EXPECT_EQ(startup[0].start_ns, trace->start_ns());
    EXPECT_LE(shutdown[0].end_ns, trace->end_ns());
    if (w >= 0) last_ready = std::max(last_ready, startup[0].end_ns);
  }
  // The pool's start-up ends when its last rank's clock was measured.
  EXPECT_EQ(spans_of(*trace, pool::SpanKind::kStartup, -1)[0].end_ns, last_ready);
}

TEST(MpiPoolTrace, StatsAddUpToWorkersTimesWall) {
  const auto trace = traced_map();
  const pool::TraceStats stats = trace->stats();
  EXPECT_EQ(stats.backend, "mpi");
  EXPECT_EQ(stats.workers, expected_workers());
  expect_parts_add_up(stats);
  EXPECT_EQ(stats.gil_wait, 0.0);
  std::uint64_t tasks = 0;
  std::uint64_t items = 0;
  for (const pool::WorkerStats& worker : stats.per_worker) {
    tasks += worker.tasks;
    items += worker.items;
  }
  EXPECT_EQ(tasks, 200u);
  EXPECT_EQ(items, 1000u);
}

TEST(MpiPoolTrace, ChromeTraceFileHasOneRowPerRankAndOneForThePool) {
  const auto trace = traced_map();
  std::ostringstream file;
  trace->write_chrome_json(file);
  const auto document = nlohmann::json::parse(file.str());
  std::set<int> tids;
  std::size_t complete = 0;
  std::uint64_t items = 0;
  for (const auto& event : document["traceEvents"]) {
    if (event["ph"] != "X") continue;
    ++complete;
    tids.insert(event["tid"].get<int>());
    if (event["cat"] == "run") items += event["args"]["items"].get<std::uint64_t>();
  }
  std::set<int> expected_tids;
  for (int tid = 0; tid <= expected_workers(); ++tid) expected_tids.insert(tid);
  EXPECT_EQ(tids, expected_tids);
  EXPECT_EQ(complete, trace->spans().size());
  EXPECT_EQ(items, 1000u);
  EXPECT_EQ(document["metadata"]["backend"], "mpi");
  EXPECT_EQ(document["metadata"]["workers"], expected_workers());
}

TEST(MpiPoolTrace, RunSpansLastAsLongAsTheTasksAndRanksRunAtOnce) {
  auto trace = std::make_shared<pool::Trace>();
  {
    pool::MpiPool workers(0, traced(trace));
    workers.map(
        [](int x) {
          std::this_thread::sleep_for(std::chrono::milliseconds(40));
          return x;
        },
        pool::range(0, 2 * workers.size()), 1);
  }
  const auto runs = spans_of(*trace, pool::SpanKind::kRun);
  ASSERT_EQ(runs.size(), static_cast<std::size_t>(2 * expected_workers()));
  for (const pool::Span& span : runs) EXPECT_GE(span.end_ns - span.start_ns, 40'000'000);
  if (expected_workers() < 2) return;
  // Mapped onto rank 0's clock, two ranks' first tasks overlap: they ran at the same time.
  const auto a = spans_of(*trace, pool::SpanKind::kRun, 0);
  const auto b = spans_of(*trace, pool::SpanKind::kRun, 1);
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  EXPECT_TRUE(a[0].start_ns < b[0].end_ns && b[0].start_ns < a[0].end_ns);
}

TEST(MpiPoolTrace, EveryCallKindIsTracedAndGivesItsResult) {
  auto trace = std::make_shared<pool::Trace>();
  {
    pool::MpiPool workers(0, traced(trace));
    std::vector<std::string> words;
    for (int i = 0; i < 30; ++i) words.push_back(std::string(static_cast<std::size_t>(i), 'x'));
    const auto shouted = workers.map([](const std::string& w) { return w + "!"; }, words, 4);
    for (std::size_t i = 0; i < words.size(); ++i) EXPECT_EQ(shouted[i], words[i] + "!");
    long sum = 0;
    for (long value : workers.imap(square, pool::range(0L, 20L), 5)) sum += value;
    EXPECT_EQ(sum, 2470);
    EXPECT_EQ(workers.map_reduce(square, pool::range(0L, 20L), std::plus<>(), 0L, 10), 2470);
    EXPECT_EQ(workers.apply([](int a, int b) { return a * b; }, 6, 7), 42);
  }
  // 8 chunks of words, 4 of imap, 2 of map_reduce, 1 of apply; four calls.
  std::set<std::pair<std::int64_t, std::int64_t>> chunks;
  std::set<std::int64_t> jobs;
  for (const pool::Span& span : spans_of(*trace, pool::SpanKind::kRun)) {
    EXPECT_TRUE(chunks.emplace(span.job, span.chunk).second);
    jobs.insert(span.job);
  }
  EXPECT_EQ(chunks.size(), 8u + 4u + 2u + 1u);
  EXPECT_EQ(jobs.size(), 4u);
}

TEST(MpiPoolTrace, AFailedCallAndTerminateStillCompleteTheTrace) {
  auto failed = std::make_shared<pool::Trace>();
  {
    pool::MpiPool workers(0, traced(failed));
    EXPECT_THROW(workers.map(
                     [](int x) {
                       if (x == 12) throw std::runtime_error("twelve");
                       return x;
                     },
                     pool::range(0, 40), 5),
                 pool::TaskError);
    EXPECT_EQ(workers.map(square, pool::range(0L, 4L)), (std::vector<long>{0, 1, 4, 9}));
  }
  ASSERT_TRUE(failed->complete());
  // The failing chunk [10, 15) ran until its task threw.
  bool failing_chunk_ran = false;
  for (const pool::Span& span : spans_of(*failed, pool::SpanKind::kRun))
    failing_chunk_ran |= span.first_item == 10;
  EXPECT_TRUE(failing_chunk_ran);

  auto terminated = std::make_shared<pool::Trace>();
  {
    pool::MpiPool workers(0, traced(terminated));
    auto slow = workers.map_async(
        [](int x) {
          usleep(20000);
          return x;
        },
        pool::range(0, 100), 1);
    workers.terminate();
    EXPECT_TRUE(terminated->complete());
    EXPECT_THROW(slow.get(), pool::PoolNotRunning);
  }
  ASSERT_TRUE(terminated->complete());
  for (int w = -1; w < expected_workers(); ++w) {
    EXPECT_EQ(spans_of(*terminated, pool::SpanKind::kShutdown, w).size(), 1u) << "worker " << w;
  }
}

TEST(MpiPoolTrace, JoinCompletesTheTrace) {
  auto trace = std::make_shared<pool::Trace>();
  pool::MpiPool workers(0, traced(trace));
  auto pending = workers.map_async(square, pool::range(0L, 50L), 5);
  workers.close();
  workers.join();
  ASSERT_TRUE(trace->complete());
  EXPECT_EQ(spans_of(*trace, pool::SpanKind::kRun).size(), 10u);
  EXPECT_EQ(pending.get().size(), 50u);
}

TEST(MpiPoolTrace, AnUntracedPoolRecordsNothing) {
  auto trace = std::make_shared<pool::Trace>();
  {
    pool::MpiPool workers;
    EXPECT_EQ(workers.map(square, pool::range(0L, 100L), 5).size(), 100u);
  }
  EXPECT_FALSE(trace->complete());
  EXPECT_TRUE(trace->spans().empty());
  EXPECT_TRUE(trace->backend().empty());
  EXPECT_EQ(trace->workers(), 0);
}

TEST(MpiPoolTrace, ATraceRecordsOnePoolAndTheRanksServeOn) {
  auto trace = std::make_shared<pool::Trace>();
  { pool::MpiPool first(0, traced(trace)); }
  ASSERT_TRUE(trace->complete());
  EXPECT_THROW(pool::MpiPool(0, traced(trace)), std::logic_error);
  // Neither the traced pool nor the refused one keeps the ranks from serving the next pool.
  pool::MpiPool next;
  EXPECT_EQ(next.map(square, pool::range(0L, 30L), 5).size(), 30u);
}

}  // namespace

int main(int argc, char** argv) {
  pool::MpiPool::serve_workers();  // worker ranks stay here until rank 0 finalizes MPI
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
