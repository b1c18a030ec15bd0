// What a thread runs for one chunk of a stream: imap's results or map_reduce's partial value,
// or the chunk's failure (the task's, or the input's own exception).
#ifndef POOL_DETAIL_THREADS_KERNELS_H_
#define POOL_DETAIL_THREADS_KERNELS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/detail/output_capture.h"
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

// The exception in flight, as the TaskError of the task at `index`.
inline std::exception_ptr failure_of(std::size_t index) {
  return std::make_exception_ptr(
      TaskFailure::capture(static_cast<std::int64_t>(index), std::current_exception()).to_error());
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

// imap's chunk: f on every item. Returns the chunk's failure: a TaskError naming the failing
// item, or the input's own exception. A failed chunk yields nothing, as in Python.
template <class Fn, class Item, class Result>
struct MapKernel {
  using Piece = Result;
  Fn function;

  template <class GetItem>
  std::exception_ptr run(std::size_t first_index, std::size_t count, GetItem get,
                         std::vector<Result>& out) {
    std::size_t k = 0;
    try {
      out.reserve(count);
      for (; k < count; ++k) {
        t_output_label.task = static_cast<std::int64_t>(first_index + k);
        out.push_back(call_on_item<Item, Result>(function, read_input(get, k)));
        gil::checkpoint();  // item boundaries are switch points, like bytecode boundaries
      }
      return nullptr;
    } catch (const InputFailure& input) {
      return input.error;
    } catch (...) {
      return failure_of(first_index + k);
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
  std::exception_ptr run(std::size_t first_index, std::size_t count, GetItem get,
                         std::vector<T>& out) {
    std::size_t k = 0;
    try {
      T partial = init;
      for (; k < count; ++k) {
        t_output_label.task = static_cast<std::int64_t>(first_index + k);
        partial = std::invoke(op, std::move(partial),
                              call_on_item<Item, Result>(function, read_input(get, k)));
        gil::checkpoint();
      }
      out.push_back(std::move(partial));
      return nullptr;
    } catch (const InputFailure& input) {
      return input.error;
    } catch (...) {
      return failure_of(first_index + std::min(k, count - 1));
    }
  }
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_THREADS_KERNELS_H_
