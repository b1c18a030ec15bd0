// What a thread runs for one chunk of a stream: imap's results or map_reduce's partial value,
// with the task's failure or the input's own exception kept apart.
#ifndef POOL_DETAIL_THREADS_KERNELS_H_
#define POOL_DETAIL_THREADS_KERNELS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/detail/task_failure.h"
#include "pool/gil.h"

namespace pool::detail {

// f(item) on a mutable lvalue, as map calls it: the stream's own copy of the item when it holds
// one, else a copy made here.
template <class Item, class Result, class F, class Ref>
Result call_on_item(F& function, Ref&& ref) {
  if constexpr (std::is_same_v<Ref&&, Item&>) {
    return std::invoke(function, ref);
  } else {
    Item item(std::forward<Ref>(ref));
    return std::invoke(function, item);
  }
}

// An exception thrown by reading the input itself (not by the task): it reaches the caller as it
// was thrown, as Python's imap raises the iterable's own exception.
struct InputFailure {
  std::exception_ptr error;
};

// item(k), with an exception from the input wrapped in InputFailure.
template <class GetItem>
decltype(auto) read_input(GetItem& get, std::size_t k) {
  try {
    return get(k);
  } catch (...) {
    throw InputFailure{std::current_exception()};
  }
}

// What one chunk produced: imap's results before its failure, if any, or map_reduce's partial.
template <class Piece>
struct ChunkOutput {
  std::size_t first_index = 0;  // input index of the chunk's first item
  std::vector<Piece> pieces;
  std::optional<TaskFailure> failure;
  std::exception_ptr input_error;  // the chunk yields nothing then, as in Python
};

// imap's chunk: f on every item.
template <class Fn, class Item, class Result>
struct MapKernel {
  using Piece = Result;
  Fn function;

  template <class GetItem>
  void run(std::size_t first_index, std::size_t count, GetItem get, ChunkOutput<Result>& out) {
    std::size_t k = 0;
    try {
      out.pieces.reserve(count);
      for (; k < count; ++k) {
        out.pieces.push_back(call_on_item<Item, Result>(function, read_input(get, k)));
        gil::checkpoint();  // item boundaries are switch points, like bytecode boundaries
      }
    } catch (const InputFailure& input) {
      out.input_error = input.error;
      out.pieces.clear();
    } catch (...) {
      out.failure = TaskFailure::capture(static_cast<std::int64_t>(first_index + k),
                                         std::current_exception());
    }
  }
};

// map_reduce's chunk: op(T, Result) folds the chunk's results, starting from init.
template <class Fn, class Item, class Result, class Op, class T>
struct ReduceKernel {
  using Piece = T;
  Fn function;
  Op op;
  const T& init;

  template <class GetItem>
  void run(std::size_t first_index, std::size_t count, GetItem get, ChunkOutput<T>& out) {
    std::size_t k = 0;
    try {
      T partial = init;
      for (; k < count; ++k) {
        partial = std::invoke(op, std::move(partial),
                              call_on_item<Item, Result>(function, read_input(get, k)));
        gil::checkpoint();
      }
      out.pieces.push_back(std::move(partial));
    } catch (const InputFailure& input) {
      out.input_error = input.error;
      out.pieces.clear();
    } catch (...) {
      out.failure =
          TaskFailure::capture(static_cast<std::int64_t>(first_index + std::min(k, count - 1)),
                               std::current_exception());
    }
  }
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_THREADS_KERNELS_H_
