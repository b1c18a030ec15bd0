// The compile-time checks of every pool call, each with the user's mistake in words. Each returns
// true when the call can be made, so that the front end compiles the call only then and a failed
// check is the only error the user sees. kTravel: the pool runs tasks in other processes
// (ProcessPool, MpiPool), so the task function, the items, the results (and map_reduce's op and
// init) must be trivially copyable or cereal-serializable.
#ifndef POOL_DETAIL_CALL_CHECKS_H_
#define POOL_DETAIL_CALL_CHECKS_H_

#include <ranges>
#include <type_traits>

#include "pool/detail/call_types.h"
#include "pool/detail/serialization.h"

namespace pool::detail {

template <bool kTravel, class Function>
constexpr bool check_function_travels() {
  constexpr bool kOk = !kTravel || kTransferable<Function>;
  static_assert(kOk,
                "pool: the task function is copied to worker processes, so it must be trivially "
                "copyable (a function pointer, or a lambda capturing numbers by value) or a "
                "function object with a cereal serialize() member");
  return kOk;
}

template <bool kTravel, class Item>
constexpr bool check_item_travels() {
  constexpr bool kOk = !kTravel || kTransferable<Item>;
  static_assert(kOk, "pool: input items must be trivially copyable or cereal-serializable");
  return kOk;
}

template <bool kTravel, class Result>
constexpr bool check_result_travels() {
  constexpr bool kOk =
      !kTravel || (kTransferable<Result> && (std::is_trivially_copyable_v<Result> ||
                                             std::is_default_constructible_v<Result>));
  static_assert(kOk,
                "pool: results must be trivially copyable, or default-constructible and "
                "cereal-serializable");
  return kOk;
}

// map, map_async: f on every item of a sized range.
template <bool kTravel, class F, class Inputs>
constexpr bool check_map() {
  using Call = ItemCall<F, const Inputs>;
  static_assert(Call::kRange,
                "map: inputs must be a range (vector, array, list, pool::range, a view)");
  static_assert(!Call::kRange || std::ranges::sized_range<const Inputs>,
                "map: inputs must be a sized range; imap takes ranges of unknown length");
  static_assert(!Call::kRange || Call::kCallable,
                "map: f cannot be called with an item of inputs (an lvalue of its value type)");
  static_assert(!Call::kCallable || !std::is_void_v<typename Call::Raw>,
                "map: f must return a value (starmap and apply accept void functions)");
  if constexpr (Call::kCallable && std::ranges::sized_range<const Inputs> &&
                !std::is_void_v<typename Call::Raw>) {
    return check_function_travels<kTravel, std::decay_t<F>>() &&
           check_item_travels<kTravel, typename Call::Item>() &&
           check_result_travels<kTravel, typename Call::Raw>();
  } else {
    return false;
  }
}

// starmap, starmap_async: f on the elements of every tuple-like item.
template <bool kTravel, class F, class Inputs>
constexpr bool check_starmap() {
  using Call = StarCall<F, const Inputs>;
  static_assert(Call::kTupleItems,
                "starmap: inputs must be a range of tuple-like items (std::tuple, std::pair, "
                "std::array)");
  static_assert(!Call::kTupleItems || std::ranges::sized_range<const Inputs>,
                "starmap: inputs must be a sized range");
  static_assert(!Call::kTupleItems || Call::kCallable,
                "starmap: f cannot be called with the elements of an item as its arguments");
  if constexpr (Call::kCallable && std::ranges::sized_range<const Inputs>) {
    return check_map<kTravel, Starred<std::decay_t<F>>, Inputs>();
  } else {
    return false;
  }
}

// apply, apply_async: f on the pool's own copies of args, as rvalues.
template <bool kTravel, class F, class... A>
constexpr bool check_apply() {
  constexpr bool kCallable = std::is_invocable_v<std::decay_t<F>&, std::decay_t<A>...>;
  static_assert(kCallable,
                "apply: f cannot be called with these arguments (it gets the pool's own copies, "
                "as rvalues)");
  if constexpr (kCallable) {
    using R = CallResult<F, A...>;
    return check_function_travels<kTravel, std::decay_t<F>>() &&
           check_item_travels<kTravel, std::tuple<std::decay_t<A>...>>() &&
           check_result_travels<kTravel, std::conditional_t<std::is_void_v<R>, Unit, R>>();
  } else {
    return false;
  }
}

// imap, imap_unordered: f on every item of any input range.
template <bool kTravel, class F, class Inputs>
constexpr bool check_imap() {
  using Call = ItemCall<F, std::remove_reference_t<Inputs>>;
  static_assert(Call::kRange,
                "imap: inputs must be an input range; a view that cannot be iterated when const "
                "(std::views::filter) must be passed non-const or as an rvalue");
  static_assert(!Call::kRange || Call::kCallable,
                "imap: f cannot be called with an item of inputs (an lvalue of its value type)");
  static_assert(!Call::kCallable || !std::is_void_v<typename Call::Raw>,
                "imap: f must return a value");
  if constexpr (Call::kCallable && !std::is_void_v<typename Call::Raw>) {
    return check_function_travels<kTravel, std::decay_t<F>>() &&
           check_item_travels<kTravel, typename Call::Item>() &&
           check_result_travels<kTravel, typename Call::Raw>();
  } else {
    return false;
  }
}

// map_reduce: f on every item, folded with op(T, result) in each chunk and op(T, T) across them.
template <bool kTravel, class F, class Inputs, class Op, class T>
constexpr bool check_map_reduce() {
  if constexpr (check_imap<kTravel, F, Inputs>()) {
    using Result = ItemResult<F, std::remove_reference_t<Inputs>>;
    constexpr bool kFolds = std::is_invocable_r_v<T, Op&, T, Result>;
    constexpr bool kCombines = std::is_invocable_r_v<T, Op&, T, T>;
    static_assert(kFolds, "map_reduce: op(T, f's result) must return a T (T is the type of init)");
    static_assert(kCombines,
                  "map_reduce: op(T, T) must return a T, to combine the chunks' partial results");
    static_assert(std::is_copy_constructible_v<T>,
                  "map_reduce: T must be copyable: every chunk starts from a copy of init");
    constexpr bool kOpTravels = !kTravel || (kTransferable<Op> && kTransferable<T>);
    static_assert(kOpTravels,
                  "map_reduce: op and init travel to the workers, so they must be trivially "
                  "copyable or cereal-serializable");
    return kFolds && kCombines && std::is_copy_constructible_v<T> && kOpTravels;
  } else {
    return false;
  }
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_CALL_CHECKS_H_
