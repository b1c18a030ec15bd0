// Workload 2: handing out work. map(x -> x * x, range(0, N)) on a pool of the available CPUs, with
// single items (chunksize 1) and with the default chunksize, beside the limit for single items:
// two processes taking indices from one atomic counter in shared memory. The same squares read as
// a stream (imap, batch by batch) on a ProcessPool and a FreeThreadPool, and the task as a plain
// function, through a pointer and as pool::fn.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bench/benchmarks.h"
#include "bench/references.h"
#include "pool/pool.h"

namespace bench {
namespace {

struct Square {
  std::int64_t operator()(std::int64_t x) const { return x * x; }
};

std::int64_t square(std::int64_t x) { return x * x; }

// The last item's square proves the run did the work.
void check_last(benchmark::State& state, std::int64_t items, std::int64_t last) {
  if (last != (items - 1) * (items - 1)) state.SkipWithError("a wrong square came back");
}

std::string chunksize_name(std::size_t chunksize) { return chunksize == 1 ? "1" : "default"; }

// Times map(x -> x*x, range(0, items)) on `workers`.
void map_squares(benchmark::State& state, pool::ProcessPool& workers, std::int64_t items,
                 std::size_t chunksize) {
  std::int64_t last = 0;
  for (auto _ : state) {
    last = workers.map(Square{}, pool::range(std::int64_t{0}, items), chunksize).back();
  }
  check_last(state, items, last);
  state.SetItemsProcessed(state.iterations() * items);
}

// Times the reference: `processes` processes sharing one counter over the same squares.
void count_shared(benchmark::State& state, int processes, std::int64_t items) {
  SharedCounterLimit limit(items, processes);
  for (auto _ : state) limit.run(items);
  check_last(state, items, limit.result(items - 1));
  state.SetItemsProcessed(state.iterations() * items);
}

template <class Pool>
void read_stream(benchmark::State& state, Pool& workers, std::int64_t items,
                 std::size_t chunksize) {
  std::int64_t last = 0;
  for (auto _ : state) {
    for (std::int64_t square :
         workers.imap(Square{}, pool::range(std::int64_t{0}, items), chunksize)) {
      last = square;
    }
  }
  check_last(state, items, last);
  state.SetItemsProcessed(state.iterations() * items);
}

}  // namespace

void register_dispatch(const Config& config) {
  const int pool_size = config.workers;
  for (std::int64_t items : config.dispatch_items) {
    const std::string size = "/N:" + std::to_string(items);
    for (std::size_t chunksize : {std::size_t{1}, std::size_t{0}}) {
      add_benchmark("dispatch/process_pool/chunksize:" + chunksize_name(chunksize) + size,
                    [=](benchmark::State& state) {
                      pool::ProcessPool workers(pool_size);
                      map_squares(state, workers, items, chunksize);
                    })
          ->UseRealTime();
    }
    for (std::size_t chunksize : {std::size_t{1}, std::size_t{0}}) {
      const std::string chunks = "/chunksize:" + chunksize_name(chunksize) + size;
      add_benchmark("dispatch/imap/process_pool" + chunks, [=](benchmark::State& state) {
        pool::ProcessPool workers(pool_size);
        read_stream(state, workers, items, chunksize);
      })->UseRealTime();
      add_benchmark("dispatch/imap/free_threads" + chunks, [=](benchmark::State& state) {
        pool::FreeThreadPool workers(pool_size);
        read_stream(state, workers, items, chunksize);
      })->UseRealTime();
    }
    // The same task as a plain function: through a pointer, and named at compile time.
    add_benchmark("dispatch/process_pool/function_pointer/chunksize:default" + size,
                  [=](benchmark::State& state) {
                    pool::ProcessPool workers(pool_size);
                    std::int64_t last = 0;
                    for (auto _ : state) {
                      last = workers.map(&square, pool::range(std::int64_t{0}, items)).back();
                    }
                    check_last(state, items, last);
                    state.SetItemsProcessed(state.iterations() * items);
                  })
        ->UseRealTime();
    add_benchmark("dispatch/process_pool/pool_fn/chunksize:default" + size, [=](benchmark::State&
                                                                                    state) {
      pool::ProcessPool workers(pool_size);
      std::int64_t last = 0;
      for (auto _ : state) {
        last = workers.map(pool::fn<&square>, pool::range(std::int64_t{0}, items)).back();
      }
      check_last(state, items, last);
      state.SetItemsProcessed(state.iterations() * items);
    })->UseRealTime();
    add_benchmark("dispatch/shared_counter" + size, [=](benchmark::State& state) {
      count_shared(state, pool_size, items);
    })->UseRealTime();
  }
  // Many workers: one cursor per call is shared by all of them; the reference shares one counter.
  const std::int64_t items = config.dispatch_scaling_items;
  // The cost of max_memory_per_child's check between chunks, beside the same pool recycling by a
  // count it never reaches (both hand out chunks through the one cursor).
  for (bool by_memory : {false, true}) {
    add_benchmark(std::string("dispatch/process_pool/recycling_by_") +
                      (by_memory ? "memory" : "count") + "/chunksize:1/N:" + std::to_string(items),
                  [=](benchmark::State& state) {
                    pool::ProcessPoolOptions options;
                    if (by_memory) {
                      options.max_memory_per_child = std::uint64_t{1} << 40;
                    } else {
                      options.maxtasksperchild = std::uint64_t{1} << 60;
                    }
                    pool::ProcessPool workers(pool_size, options);
                    map_squares(state, workers, items, 1);
                  })
        ->UseRealTime();
  }
  for (int workers_count : config.dispatch_workers) {
    const std::string pool = "/workers:" + std::to_string(workers_count);
    for (std::size_t chunksize : {std::size_t{1}, std::size_t{0}}) {
      add_benchmark("dispatch_scaling/process_pool/chunksize:" + chunksize_name(chunksize) + pool,
                    [=](benchmark::State& state) {
                      pool::ProcessPool workers(workers_count);
                      map_squares(state, workers, items, chunksize);
                    })
          ->UseRealTime();
    }
    add_benchmark("dispatch_scaling/shared_counter" + pool, [=](benchmark::State& state) {
      count_shared(state, workers_count, items);
    })->UseRealTime();
  }
}

}  // namespace bench
