// map() on a thread pool: threads take chunks from an atomic cursor and write results in place.
// Nothing is serialized: tasks share the caller's memory.
#ifndef POOL_DETAIL_THREAD_MAP_H_
#define POOL_DETAIL_THREAD_MAP_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <ranges>
#include <type_traits>
#include <vector>

#include "pool/detail/map_job.h"
#include "pool/detail/task_failure.h"
#include "pool/detail/thread_pool_core.h"
#include "pool/gil.h"

namespace pool::detail {

template <class F, class Inputs>
auto thread_map(ThreadPoolCore& core, F& function, const Inputs& inputs, std::size_t chunksize) {
  using Types = MapTypes<F, Inputs>;
  using Result = typename Types::Result;
  static_assert(std::ranges::sized_range<const Inputs>, "map: inputs must be a sized range");
  static_assert(!std::is_void_v<Result>, "map: the task function must return a value");

  const std::size_t n = static_cast<std::size_t>(std::ranges::size(inputs));
  if (n == 0) return std::vector<Result>{};
  if (chunksize == 0) chunksize = default_chunksize(n, static_cast<std::size_t>(core.size()));
  const std::size_t n_chunks = (n + chunksize - 1) / chunksize;

  // Where each chunk starts in the input; random-access ranges need no table.
  using Iterator = std::ranges::iterator_t<const Inputs>;
  std::vector<Iterator> chunk_starts;
  if constexpr (!std::ranges::random_access_range<const Inputs>) {
    chunk_starts.reserve(n_chunks);
    auto it = std::ranges::begin(inputs);
    for (std::size_t c = 0; c < n_chunks; ++c) {
      chunk_starts.push_back(it);
      std::ranges::advance(it, static_cast<std::ptrdiff_t>(std::min(chunksize, n - c * chunksize)));
    }
  }

  // Separate objects per slot, so threads never write to the same memory (vector<bool> would).
  std::vector<std::optional<Result>> slots(n);
  std::atomic<std::size_t> next_chunk{0};
  std::atomic<bool> cancelled{false};
  std::mutex failure_mutex;
  std::optional<TaskFailure> first_failure;

  core.run([&](int) {
    while (!cancelled.load(std::memory_order_relaxed)) {
      const std::size_t chunk = next_chunk.fetch_add(1, std::memory_order_relaxed);
      if (chunk >= n_chunks) return;
      const std::size_t begin = chunk * chunksize;
      const std::size_t end = std::min(begin + chunksize, n);
      auto it = [&] {
        if constexpr (std::ranges::random_access_range<const Inputs>) {
          return std::ranges::begin(inputs) + static_cast<std::ptrdiff_t>(begin);
        } else {
          return chunk_starts[chunk];
        }
      }();
      for (std::size_t i = begin; i < end; ++i, ++it) {
        try {
          auto item = *it;
          slots[i].emplace(std::invoke(function, item));
        } catch (...) {
          TaskFailure failure =
              TaskFailure::capture(static_cast<std::int64_t>(i), std::current_exception());
          std::lock_guard<std::mutex> guard(failure_mutex);
          if (!first_failure || failure.index < first_failure->index) first_failure = failure;
          cancelled.store(true, std::memory_order_relaxed);
          return;
        }
        gil::checkpoint();  // item boundaries are switch points, like bytecode boundaries
      }
    }
  });
  if (first_failure) throw first_failure->to_error();

  std::vector<Result> results;
  results.reserve(n);
  for (auto& slot : slots) results.push_back(std::move(*slot));
  return results;
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_THREAD_MAP_H_
