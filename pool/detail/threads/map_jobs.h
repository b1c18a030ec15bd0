// map, starmap and apply on a thread pool, as ThreadPoolCore jobs: threads take chunks from the
// job's cursor and write results in place; the thread that finishes the last chunk settles the
// call's AsyncState. Nothing is serialized: tasks share the caller's memory.
#ifndef POOL_DETAIL_THREADS_MAP_JOBS_H_
#define POOL_DETAIL_THREADS_MAP_JOBS_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/async_result.h"
#include "pool/detail/call_adapters.h"
#include "pool/detail/call_types.h"
#include "pool/detail/chunking.h"
#include "pool/detail/memory_limits.h"
#include "pool/detail/output_capture.h"
#include "pool/detail/task_failure.h"
#include "pool/detail/threads/core.h"
#include "pool/gil.h"
#include "pool/range.h"

namespace pool::detail {

// The items of a map, as its chunks reach them. Stored is `const Range&` (a blocking call) or an
// owned Range (an async call). Random-access ranges are indexed; others are walked from a table
// of chunk starts that the caller makes once.
template <class Stored>
class MapItems {
  using Range = std::remove_cvref_t<Stored>;
  using Iterator = std::ranges::iterator_t<const Range>;
  static constexpr bool kIndexed = std::ranges::random_access_range<const Range>;

 public:
  MapItems(Stored range, std::size_t n, std::size_t chunksize)
      : range_(std::forward<Stored>(range)) {
    if constexpr (!kIndexed) {
      starts_.reserve(static_cast<std::size_t>(chunk_count(n, chunksize)));
      auto it = std::ranges::begin(range_);
      for (std::size_t first = 0; first < n;) {
        const std::size_t count = std::min(chunksize, n - first);
        starts_.push_back(it);
        std::ranges::advance(it, static_cast<std::ptrdiff_t>(count));
        first += count;
      }
    }
  }

  Iterator chunk_begin(std::size_t chunk, std::size_t first) const {
    if constexpr (kIndexed) {
      return std::ranges::begin(range_) + static_cast<std::ptrdiff_t>(first);
    } else {
      return starts_[chunk];
    }
  }

 private:
  Stored range_;
  std::vector<Iterator> starts_;
};

// Fn is `F&` for a blocking call (the caller's function, used in place) or an owned copy; Stored
// likewise for the inputs.
template <class Fn, class Stored, class Result>
class ThreadMapJob final : public ThreadJob {
 public:
  using State = AsyncState<std::vector<Result>>;

  // An empty map is one empty chunk, so that a thread settles it like any other.
  ThreadMapJob(Fn function, Stored inputs, std::size_t n, std::size_t chunksize,
               std::shared_ptr<State> state)
      : ThreadJob(n == 0 ? 1 : static_cast<std::size_t>(chunk_count(n, chunksize))),
        function_(std::forward<Fn>(function)),
        items_(std::forward<Stored>(inputs), n, chunksize),
        n_(n),
        chunksize_(chunksize),
        slots_(n),
        state_(std::move(state)) {}

 private:
  std::pair<std::int64_t, std::uint64_t> items_of(std::size_t chunk) const override {
    const std::size_t begin = chunk * chunksize_;
    return {static_cast<std::int64_t>(begin), begin < n_ ? std::min(chunksize_, n_ - begin) : 0};
  }

  void run_chunk(std::size_t chunk) override {
    const std::size_t begin = chunk * chunksize_;
    if (begin >= n_) return;
    const std::size_t end = begin + std::min(chunksize_, n_ - begin);
    auto it = items_.chunk_begin(chunk, begin);
    for (std::size_t i = begin; i < end; ++i, ++it) {
      // Items after a known failure cannot change the outcome.
      if (i > lowest_failure_.load(std::memory_order_relaxed)) return;
      t_output_label.task = static_cast<std::int64_t>(i);
      std::exception_ptr input_error;
      try {
        auto item = [&] {
          try {
            return *it;
          } catch (...) {
            input_error = std::current_exception();
            throw;
          }
        }();
        slots_[i].emplace(std::invoke(function_, item));
      } catch (...) {
        record_failure(TaskFailure::capture(static_cast<std::int64_t>(i), std::current_exception()),
                       input_error);
        return;
      }
      gil::checkpoint();  // item boundaries are switch points, like bytecode boundaries
    }
  }

  // Chunks are handed out in order, so every item below a failing one was already taken and runs
  // to its end: the lowest failing index is known once the job settles.
  // `input_error`: the input itself threw; the caller gets that exception as it was thrown.
  void record_failure(TaskFailure failure, std::exception_ptr input_error) {
    {
      std::lock_guard<std::mutex> guard(failure_mutex_);
      const auto index = static_cast<std::size_t>(failure.index);
      if (!failure_.add(std::move(failure))) return;
      lowest_failure_.store(index, std::memory_order_relaxed);
      input_error_ = std::move(input_error);
    }
    cancel(nullptr);
  }

  void settle() override {
    try {
      {
        std::lock_guard<std::mutex> guard(failure_mutex_);
        if (input_error_) return state_->fail(input_error_);
        if (failure_) return state_->fail(failure_.error());
      }
      if (std::exception_ptr reason = cancel_reason()) return state_->fail(reason);
      std::vector<Result> results;
      results.reserve(n_);
      for (auto& slot : slots_) results.push_back(std::move(*slot));
      slots_ = {};
      state_->succeed(std::move(results));
    } catch (...) {
      state_->fail(std::current_exception());  // out of memory for the results
    }
  }

  Fn function_;
  MapItems<Stored> items_;  // may point into itself: constructed in place, never moved
  const std::size_t n_;
  const std::size_t chunksize_;
  // One object per item, so threads never write to the same memory (vector<bool> would).
  std::vector<std::optional<Result>> slots_;
  std::atomic<std::size_t> lowest_failure_{std::numeric_limits<std::size_t>::max()};
  std::mutex failure_mutex_;
  LowestFailure failure_;
  std::exception_ptr input_error_;
  std::shared_ptr<State> state_;
};

// One call f(args...) as a one-chunk job. A throwing f gives TaskError with task_index 0.
template <class Fn, class Tuple, class R>
class ThreadApplyJob final : public ThreadJob {
 public:
  ThreadApplyJob(Fn function, Tuple args, std::shared_ptr<AsyncState<R>> state)
      : ThreadJob(1),
        function_(std::forward<Fn>(function)),
        args_(std::move(args)),
        state_(std::move(state)) {}

 private:
  void run_chunk(std::size_t) override {
    t_output_label.task = 0;
    try {
      if constexpr (std::is_void_v<R>) {
        std::apply(function_, std::move(args_));
      } else {
        result_.emplace(std::apply(function_, std::move(args_)));
      }
    } catch (...) {
      failure_ = TaskFailure::capture(0, std::current_exception());
    }
    gil::checkpoint();
  }

  void settle() override {
    if (failure_) return state_->fail(std::make_exception_ptr(failure_->to_error()));
    if (std::exception_ptr reason = cancel_reason()) return state_->fail(reason);
    if constexpr (std::is_void_v<R>) {
      state_->succeed();
    } else {
      state_->succeed(std::move(*result_));
    }
  }

  struct Empty {};
  Fn function_;
  Tuple args_;
  std::conditional_t<std::is_void_v<R>, Empty, std::optional<R>> result_;
  std::optional<TaskFailure> failure_;
  std::shared_ptr<AsyncState<R>> state_;
};

// Throws std::length_error or OutOfMemory, before anything is submitted, when a map of n items
// cannot be held: a slot per item while the threads run, then the returned vector, and for
// map_async its own copy of the inputs (item_bytes each; 0 when it keeps none).
template <class Result>
void check_map_sizes(std::size_t n, std::size_t item_bytes) {
  constexpr const char* kWhat = "map's results and inputs (items x bytes)";
  const std::uint64_t slots = checked_product(n, sizeof(std::optional<Result>), kWhat);
  const std::uint64_t returned = checked_product(n, sizeof(Result), kWhat);
  const std::uint64_t inputs = checked_product(n, item_bytes, kWhat);
  const std::uint64_t total = checked_sum(checked_sum(slots, returned, kWhat), inputs, kWhat);
  if (!beyond_memory_limit(total)) return;
  check_memory_request(
      total, "map's results (" + describe_bytes(slots) + " of slots while the threads run and " +
                 describe_bytes(returned) + " for the returned vector)" +
                 (inputs != 0 ? " and its copy of the inputs (" + describe_bytes(inputs) + ")"
                              : std::string()));
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_THREADS_MAP_JOBS_H_
