#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <list>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pool/pool.h"
#include "tests/leak_check.h"

namespace {

using ProcessPoolMap = pool::testing::NoLeftoversTest;

int square(int x) { return x * x; }

struct Particle {
  std::string name;
  std::vector<double> position;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(name, position);
  }
  bool operator==(const Particle&) const = default;
};

struct Norm {
  double scale = 1.0;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(scale);
  }
  double operator()(const Particle& p) const {
    double sum = 0;
    for (double x : p.position) sum += x * x;
    return scale * std::sqrt(sum);
  }
};

// A trivially copyable result larger than a page.
struct Block {
  std::array<std::int64_t, 1024> values;
};

TEST_F(ProcessPoolMap, AppliesAFunctionPointerToInts) {
  pool::ProcessPool workers(2);
  std::vector<int> inputs(100);
  std::iota(inputs.begin(), inputs.end(), -50);
  std::vector<int> expected;
  for (int x : inputs) expected.push_back(square(x));
  EXPECT_EQ(workers.map(square, inputs), expected);
}

TEST_F(ProcessPoolMap, ReturnsDoubles) {
  pool::ProcessPool workers(2);
  const std::vector<double> inputs = {0.0, 0.25, 1.0, 2.5, 1e300};
  const auto roots = workers.map([](double x) { return std::sqrt(x); }, inputs);
  ASSERT_EQ(roots.size(), inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) EXPECT_DOUBLE_EQ(roots[i], std::sqrt(inputs[i]));
}

TEST_F(ProcessPoolMap, TakesAndReturnsStrings) {
  pool::ProcessPool workers(3);
  const std::vector<std::string> words = {"", "pool", "multiprocessing", std::string(5000, 'x')};
  const auto shouted = workers.map(
      [](const std::string& w) {
        std::string upper = w;
        for (char& c : upper) c = static_cast<char>(std::toupper(c));
        return upper + "!";
      },
      words);
  EXPECT_EQ(shouted, (std::vector<std::string>{"!", "POOL!", "MULTIPROCESSING!",
                                               std::string(5000, 'X') + "!"}));
}

TEST_F(ProcessPoolMap, CarriesStructsWithCerealSerializeBothWays) {
  pool::ProcessPool workers(2);
  std::vector<Particle> particles;
  for (int i = 0; i < 20; ++i) {
    particles.push_back({"p" + std::to_string(i), {1.0 * i, 2.0 * i, 2.0 * i}});
  }
  const auto norms = workers.map(Norm{2.0}, particles);
  ASSERT_EQ(norms.size(), particles.size());
  for (int i = 0; i < 20; ++i) EXPECT_DOUBLE_EQ(norms[i], 2.0 * 3.0 * i);

  const auto renamed = workers.map(
      [](const Particle& p) {
        return Particle{p.name + "'", {p.position.back()}};
      },
      particles);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(renamed[i], (Particle{"p" + std::to_string(i) + "'", {2.0 * i}}));
  }
}

TEST_F(ProcessPoolMap, CopiesLambdaCapturesIntoTheWorkers) {
  pool::ProcessPool workers(2);
  const long offset = 1000;
  const double factor = 0.5;
  const auto out =
      workers.map([offset, factor](long x) { return factor * (x + offset); }, pool::range(0, 10));
  for (long x = 0; x < 10; ++x) EXPECT_DOUBLE_EQ(out[x], 0.5 * (x + 1000));
}

TEST_F(ProcessPoolMap, KeepsInputOrderForEveryChunksize) {
  pool::ProcessPool workers(3);
  std::vector<int> inputs(1001);
  std::iota(inputs.begin(), inputs.end(), 0);
  for (std::size_t chunksize :
       {std::size_t{1}, std::size_t{7}, std::size_t{0}, std::size_t{5000}}) {
    const auto out = workers.map([](int x) { return 3 * x + 1; }, inputs, chunksize);
    ASSERT_EQ(out.size(), inputs.size()) << "chunksize " << chunksize;
    for (int i = 0; i <= 1000; ++i) ASSERT_EQ(out[i], 3 * i + 1) << "chunksize " << chunksize;
  }
}

TEST_F(ProcessPoolMap, KeepsOrderOfSerializedResultsForEveryChunksize) {
  pool::ProcessPool workers(2);
  for (std::size_t chunksize :
       {std::size_t{1}, std::size_t{7}, std::size_t{0}, std::size_t{5000}}) {
    const auto out =
        workers.map([](int x) { return std::to_string(x); }, pool::range(0, 500), chunksize);
    ASSERT_EQ(out.size(), 500u);
    for (int i = 0; i < 500; ++i) ASSERT_EQ(out[i], std::to_string(i)) << "chunksize " << chunksize;
  }
}

TEST_F(ProcessPoolMap, ReturnsNothingForEmptyInput) {
  pool::ProcessPool workers(2);
  EXPECT_TRUE(workers.map(square, std::vector<int>{}).empty());
  EXPECT_TRUE(workers.map(square, pool::range(5, 5)).empty());
  EXPECT_TRUE(workers.map(square, pool::range(5, 2)).empty());
}

TEST_F(ProcessPoolMap, AcceptsAnySizedRange) {
  pool::ProcessPool workers(2);
  const std::list<int> list = {3, 1, 2};
  EXPECT_EQ(workers.map(square, list), (std::vector<int>{9, 1, 4}));
  const std::array<int, 4> array = {1, 2, 3, 4};
  EXPECT_EQ(workers.map(square, array), (std::vector<int>{1, 4, 9, 16}));
}

TEST_F(ProcessPoolMap, MapsALazyRangeWithoutMaterializingIt) {
  pool::ProcessPool workers(2);
  const auto out = workers.map([](long long k) { return k * k; }, pool::range(-3LL, 4LL));
  EXPECT_EQ(out, (std::vector<long long>{9, 4, 1, 0, 1, 4, 9}));
  // 10^7 items travel as chunk bounds; only the results take memory.
  const auto big =
      workers.map([](long k) { return static_cast<int>(k % 7); }, pool::range(0L, 10'000'000L));
  ASSERT_EQ(big.size(), 10'000'000u);
  EXPECT_EQ(big[9'999'999], 9'999'999 % 7);
  EXPECT_EQ(std::accumulate(big.begin(), big.end(), 0L), 29'999'994L);
}

TEST_F(ProcessPoolMap, ReturnsResultsLargerThanAPage) {
  pool::ProcessPool workers(2);
  const auto blocks = workers.map(
      [](int seed) {
        Block block{};
        for (std::size_t i = 0; i < block.values.size(); ++i) block.values[i] = seed * 10000 + i;
        return block;
      },
      pool::range(0, 64), 1);
  for (int seed = 0; seed < 64; ++seed) {
    EXPECT_EQ(blocks[seed].values[0], seed * 10000);
    EXPECT_EQ(blocks[seed].values[1023], seed * 10000 + 1023);
  }
  // Serialized results that outgrow every worker's initial result buffer (1 MiB).
  const auto pages =
      workers.map([](int i) { return std::string(100'000, static_cast<char>('a' + i % 26)); },
                  pool::range(0, 100), 10);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(pages[i].size(), 100'000u);
    EXPECT_EQ(pages[i].front(), 'a' + i % 26);
    EXPECT_EQ(pages[i].back(), 'a' + i % 26);
  }
}

// Large trivially copyable results stay in the workers' own memory and are pulled from there;
// small chunks, and pools with maxtasksperchild, go through shared memory. Every way, the same
// results in input order, also over calls that reuse the workers' memory.
TEST_F(ProcessPoolMap, LargeResultsComeBackIntactWhetherPulledOrShared) {
  constexpr long kItems = 3'000'000;
  pool::ProcessPoolOptions recycled;
  recycled.maxtasksperchild = 1'000'000;
  pool::ProcessPool pulling(2);
  pool::ProcessPool sharing(2, recycled);
  for (pool::ProcessPool* workers : {&pulling, &sharing}) {
    for (std::size_t chunksize : {std::size_t{0}, std::size_t{100'000}, std::size_t{1'000}}) {
      for (int call = 0; call < 2; ++call) {
        const std::vector<long> squares =
            workers->map([](long x) { return x * x - 3; }, pool::range(0L, kItems), chunksize);
        ASSERT_EQ(squares.size(), static_cast<std::size_t>(kItems));
        for (long x = 0; x < kItems; ++x) ASSERT_EQ(squares[x], x * x - 3) << x;
      }
    }
    long count = 0;
    for (long value : workers->imap([](long x) { return -x; }, pool::range(0L, kItems), 50'000)) {
      ASSERT_EQ(value, -count);
      ++count;
    }
    EXPECT_EQ(count, kItems);
  }
}

// A worker that dies after its chunk finished, before the caller collected the call, takes the
// chunk's pulled results with it: the call fails with WorkerDied saying so, and the pool goes on.
TEST_F(ProcessPoolMap, AWorkerThatDiesHoldingFinishedResultsFailsTheCallClearly) {
  pool::ProcessPool workers(2);
  auto big = workers.map_async([](long x) { return x + 1; }, pool::range(0L, 400'000L), 100'000);
  std::vector<pool::AsyncResult<int>> deaths;
  for (int i = 0; i < 2; ++i) {
    deaths.push_back(workers.apply_async([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // `big` finishes meanwhile
      ::raise(SIGKILL);
      return 0;
    }));
  }
  // The parent does not drive meanwhile: `big` finishes, then both workers die, before it looks.
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // resumed after SIGCHLD
  try {
    const std::vector<long> values = big.get();
    // Where the system forbids pulling, the results were in shared memory: nothing was lost.
    ASSERT_EQ(values.size(), 400'000u);
    EXPECT_EQ(values.back(), 400'000);
  } catch (const pool::WorkerDied& died) {
    EXPECT_EQ(died.signal(), SIGKILL);
    EXPECT_NE(std::string(died.what()).find("results were still in its memory"), std::string::npos)
        << died.what();
  }
  for (auto& death : deaths) EXPECT_THROW(death.get(), pool::WorkerDied);
  EXPECT_EQ(workers.map([](long x) { return 2 * x; }, pool::range(0L, 200'000L), 100'000).back(),
            399'998);
}

TEST_F(ProcessPoolMap, RunsTasksInWorkerProcesses) {
  pool::ProcessPool workers(2);
  const auto pids =
      workers.map([](int) { return static_cast<int>(::getpid()); }, pool::range(0, 200), 1);
  for (int pid : pids) EXPECT_NE(pid, ::getpid());
}

// The pool keeps 256 calls' state in shared slots, reused in turn: a call in a reused slot sees
// nothing of the failure or the cancellation of the call that held it before.
TEST_F(ProcessPoolMap, CallsFarBeyondTheSlotCountSeeNothingOfEarlierCalls) {
  pool::ProcessPool workers(2);
  for (int call = 0; call < 700; ++call) {
    if (call % 97 == 0) {
      try {
        workers.map(
            [](int x) {
              if (x >= 5) throw std::domain_error("item " + std::to_string(x));
              return x;
            },
            pool::range(0, 40), 1);
        FAIL() << "call " << call << " should have failed";
      } catch (const pool::TaskError& error) {
        EXPECT_EQ(error.task_index(), 5) << "call " << call;
      }
    } else if (call % 89 == 0) {
      auto dropped = workers.map_async(square, pool::range(0, 1000));
      dropped.cancel();
      try {
        dropped.get();
      } catch (const pool::CancelledError&) {
      }
    } else {
      const auto squares = workers.map(square, pool::range(call, call + 20), 3);
      ASSERT_EQ(squares.size(), 20u) << "call " << call;
      for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(squares[static_cast<std::size_t>(i)], (call + i) * (call + i)) << "call " << call;
      }
    }
  }
}

TEST_F(ProcessPoolMap, UsesDefaultChunksizeOfPython) {
  EXPECT_EQ(pool::detail::default_chunksize(100, 4), 7u);  // divmod(100, 16) = (6, 4) -> 7
  EXPECT_EQ(pool::detail::default_chunksize(32, 4), 2u);   // exact: no round-up
  EXPECT_EQ(pool::detail::default_chunksize(3, 2), 1u);
  EXPECT_EQ(pool::detail::default_chunksize(0, 2), 1u);
}

}  // namespace
