// Compile-time checks for the pools whose tasks run in another process (ProcessPool, MpiPool):
// the task function, its inputs and its results must be able to travel there.
#ifndef POOL_DETAIL_TRANSFER_CHECKS_H_
#define POOL_DETAIL_TRANSFER_CHECKS_H_

#include <ranges>
#include <type_traits>

#include "pool/detail/map_job.h"
#include "pool/detail/serialization.h"

namespace pool::detail {

template <class Function>
void check_task_function() {
  static_assert(kTransferable<Function>,
                "pool: the task function is copied to worker processes, so it must be trivially "
                "copyable (a function pointer, or a lambda capturing numbers by value) or a "
                "function object with a cereal serialize() member");
}

template <class Result>
void check_task_result() {
  static_assert(!std::is_void_v<Result>,
                "pool: map's task function must return a value (apply and apply_async take void "
                "functions)");
  static_assert(kTransferable<Result> && (std::is_trivially_copyable_v<Result> ||
                                          std::is_default_constructible_v<Result>),
                "pool: results must be trivially copyable, or default-constructible and "
                "cereal-serializable");
}

// map, starmap, map_async: a sized range of items that travel, or a pool::range.
template <class F, class Inputs>
void check_map_call() {
  using Types = MapTypes<std::decay_t<F>, const Inputs&>;
  static_assert(std::ranges::sized_range<const Inputs>,
                "pool: map's inputs must be a sized range (vector, array, list, pool::range); use "
                "imap for other ranges");
  check_task_function<std::decay_t<F>>();
  static_assert(Types::kLazyRange || kTransferable<typename Types::Item>,
                "pool: input items must be trivially copyable or cereal-serializable");
  check_task_result<typename Types::Result>();
}

// imap, imap_unordered, map_reduce: any input range.
template <class F, class Inputs>
void check_stream_call() {
  using Types = MapTypes<std::decay_t<F>, std::views::all_t<Inputs>>;
  static_assert(std::ranges::input_range<Inputs>, "pool: inputs must be a range");
  check_task_function<std::decay_t<F>>();
  static_assert(Types::kLazyRange || kTransferable<typename Types::Item>,
                "pool: input items must be trivially copyable or cereal-serializable");
  check_task_result<typename Types::Result>();
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_TRANSFER_CHECKS_H_
