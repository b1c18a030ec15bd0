// Workload 6: the first call on a fresh pool, as a program that maps its big input once sees it.
// Each repetition runs in a fresh process (this binary again, with --cold-child): it makes a
// ProcessPool and times its first map only: map(x -> x * x) over 10^6 and 10^7 longs, and 10^5
// strings of 1 KiB; and a pool's whole life (start-up, map of 10, shutdown) beside as many bare
// fork()+waitpid. Beside it, measured the same way in the same run, the serial loop writing the
// same results into fresh memory: a plain buffer (this machine pays for the first touch of every
// 4 KiB page) and one advised for huge pages (the floor: first touch paid 2 MiB at a time). A
// fresh process matters: memory this process used before would be warm, and after a fork the
// first write to each of its pages is a copy-on-write fault.
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "bench/benchmarks.h"
#include "bench/references.h"
#include "pool/pool.h"

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Square {
  std::int64_t operator()(std::int64_t x) const { return x * x; }
};

struct Letters {
  std::int64_t bytes;
  std::string operator()(std::int64_t i) const {
    return std::string(static_cast<std::size_t>(bytes), static_cast<char>('a' + i % 26));
  }
};

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// Fresh memory for n values: plain, or 2 MiB-aligned and advised for huge pages.
std::unique_ptr<std::int64_t[], FreeDeleter> fresh_buffer(std::int64_t n, bool huge) {
  const auto bytes = static_cast<std::size_t>(n) * sizeof(std::int64_t);
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  void* memory =
      huge ? std::aligned_alloc(kHuge, (bytes + kHuge - 1) / kHuge * kHuge) : std::malloc(bytes);
  if (huge && memory != nullptr) ::madvise(memory, bytes, MADV_HUGEPAGE);
  return std::unique_ptr<std::int64_t[], FreeDeleter>(static_cast<std::int64_t*>(memory));
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One measurement in a fresh process: this binary with --cold-child WHAT N; seconds, or a
// negative value when the child failed.
double in_fresh_process(const std::string& what, std::int64_t n, int workers) {
  int out[2];
  if (::pipe(out) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  const std::string count = std::to_string(n);
  const std::string pool_size = std::to_string(workers);
  char self[] = "/proc/self/exe";
  char flag[] = "--cold-child";
  std::vector<char*> argv = {self,
                             flag,
                             const_cast<char*>(what.c_str()),
                             const_cast<char*>(count.c_str()),
                             const_cast<char*>(pool_size.c_str()),
                             nullptr};
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, self, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  double seconds = -1;
  if (spawned == 0) {
    char text[64] = {};
    std::size_t got = 0;
    for (ssize_t r;
         got < sizeof text - 1 && (r = ::read(out[0], text + got, sizeof text - 1 - got)) > 0;) {
      got += static_cast<std::size_t>(r);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) seconds = std::atof(text);
  }
  ::close(out[0]);
  return seconds;
}

void fresh_process_benchmark(const std::string& name, const std::string& what, std::int64_t n,
                             int workers) {
  add_benchmark(name, [=](benchmark::State& state) {
    for (auto _ : state) {
      const double seconds = in_fresh_process(what, n, workers);
      if (seconds < 0) {
        state.SkipWithError("the measuring child failed");
        break;
      }
      state.SetIterationTime(seconds);
    }
  })->UseManualTime();
}

}  // namespace

int run_cold_child(const std::string& what, std::int64_t n, int workers) {
  double seconds = 0;
  if (what == "squares/process_pool" || what == "strings/process_pool") {
    pool::ProcessPool fresh(workers);
    const Clock::time_point start = Clock::now();
    bool right = false;
    if (what == "squares/process_pool") {
      right = fresh.map(Square{}, pool::range(std::int64_t{0}, n)).back() == (n - 1) * (n - 1);
    } else {
      right =
          fresh.map(Letters{1024}, pool::range(std::int64_t{0}, n)).back() == Letters{1024}(n - 1);
    }
    seconds = seconds_since(start);
    if (!right) return 1;
  } else if (what == "startup/process_pool") {
    // A pool's whole life for a map of n, as a short program's first pool.
    const Clock::time_point start = Clock::now();
    std::int64_t last = 0;
    {
      pool::ProcessPool fresh(workers);
      last = fresh.map(Square{}, pool::range(std::int64_t{0}, n)).back();
    }
    seconds = seconds_since(start);
    if (last != (n - 1) * (n - 1)) return 1;
  } else if (what == "startup/fork_waitpid") {
    const Clock::time_point start = Clock::now();
    fork_and_reap(workers);
    seconds = seconds_since(start);
  } else if (what == "squares/serial_plain" || what == "squares/serial_huge_pages") {
    const Clock::time_point start = Clock::now();
    auto squares = fresh_buffer(n, what == "squares/serial_huge_pages");
    for (std::int64_t x = 0; x < n; ++x) squares[x] = x * x;
    benchmark::DoNotOptimize(squares.get());
    benchmark::ClobberMemory();
    seconds = seconds_since(start);
  } else if (what == "strings/serial") {
    const Clock::time_point start = Clock::now();
    std::vector<std::string> values;
    values.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) values.push_back(Letters{1024}(i));
    benchmark::DoNotOptimize(values.data());
    seconds = seconds_since(start);
  } else {
    return 2;
  }
  std::printf("%.9f\n", seconds);
  return 0;
}

void register_cold_calls(const Config& config) {
  for (std::int64_t n : config.cold_items) {
    const std::string size = "/N:" + std::to_string(n);
    for (const char* what :
         {"squares/process_pool", "squares/serial_plain", "squares/serial_huge_pages"}) {
      fresh_process_benchmark(std::string("cold/") + what + size, what, n, config.workers);
    }
  }
  for (int workers : config.startup_workers) {
    for (const char* what : {"startup/process_pool", "startup/fork_waitpid"}) {
      fresh_process_benchmark(std::string("cold/") + what + "/workers:" + std::to_string(workers),
                              what, 10, workers);
    }
  }
  const std::string size = "/N:" + std::to_string(config.result_strings);
  for (const char* what : {"strings/process_pool", "strings/serial"}) {
    fresh_process_benchmark(std::string("cold/") + what + size, what, config.result_strings,
                            config.workers);
  }
}

}  // namespace bench
