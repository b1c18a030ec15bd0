// The types of the pools' calls, worked out once for every pool: what f returns on an item (map,
// imap), on a tuple's elements (starmap), on apply's arguments. A call that cannot be made gets
// NotCallable rather than a substitution failure, so that the call's own static_assert (see
// call_checks.h) tells the user what is wrong.
#ifndef POOL_DETAIL_CALL_TYPES_H_
#define POOL_DETAIL_CALL_TYPES_H_

#include <cstddef>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>

#include "pool/args.h"
#include "pool/detail/call_adapters.h"

namespace pool::detail {

struct NotCallable {};

template <class F, class... A>
struct InvokeResult {
  using type = NotCallable;
};
template <class F, class... A>
requires std::is_invocable_v<F, A...>
struct InvokeResult<F, A...> {
  using type = std::decay_t<std::invoke_result_t<F, A...>>;
};

// f(item) as a pool calls it: on its own copy of an item of Range, passed as an lvalue.
template <class F, class Range>
struct ItemCall {
  static constexpr bool kRange = false;
  static constexpr bool kCallable = false;
  using Raw = NotCallable;
};
template <class F, class Range>
requires std::ranges::input_range<Range>
struct ItemCall<F, Range> {
  static constexpr bool kRange = true;
  using Item = std::ranges::range_value_t<Range>;
  static constexpr bool kCallable = std::is_invocable_v<std::decay_t<F>&, Item&>;
  using Raw = typename InvokeResult<std::decay_t<F>&, Item&>::type;
};
// What map and imap yield per item; NotCallable also for a void f, which they reject.
template <class F, class Range>
using ItemResult = std::conditional_t<std::is_void_v<typename ItemCall<F, Range>::Raw>, NotCallable,
                                      typename ItemCall<F, Range>::Raw>;

template <class T>
concept TupleLike = requires {
  std::tuple_size<T>::value;
};

template <class F, class Tuple, class Indices>
struct StarCallOn;
template <class F, class Tuple, std::size_t... I>
struct StarCallOn<F, Tuple, std::index_sequence<I...>> {
  static constexpr bool kCallable =
      std::is_invocable_v<std::decay_t<F>&, std::tuple_element_t<I, Tuple>&...>;
};
// starmap's f(std::get<0>(item), std::get<1>(item), ...) on a tuple-like item.
template <class F, class Range>
struct StarCall {
  static constexpr bool kTupleItems = false;
  static constexpr bool kCallable = false;
  using Result = NotCallable;
};
template <class F, class Range>
requires std::ranges::input_range<Range> && TupleLike<std::ranges::range_value_t<Range>>
struct StarCall<F, Range> {
  using Item = std::ranges::range_value_t<Range>;
  static constexpr bool kTupleItems = true;
  static constexpr bool kCallable =
      StarCallOn<F, Item, std::make_index_sequence<std::tuple_size_v<Item>>>::kCallable;
  // Starred turns a void f into one returning Unit.
  using Result =
      std::conditional_t<kCallable, ItemResult<Starred<std::decay_t<F>>, Range>, NotCallable>;
};
template <class F, class Range>
using StarItemResult = typename StarCall<F, Range>::Result;

// apply's f(args...) on the pool's own copies of the arguments, passed as rvalues; may be void.
// A task taking a std::stop_token first is called with one (thread pools).
template <class F, class... A>
struct CallResultOf : InvokeResult<std::decay_t<F>&, std::decay_t<A>...> {};
template <class F, class... A>
requires TakesStopToken<F, A...>
struct CallResultOf<F, A...> : InvokeResult<std::decay_t<F>&, std::stop_token, std::decay_t<A>...> {
};
template <class F, class... A>
using CallResult = typename CallResultOf<F, A...>::type;

// apply_async's arguments, unless they start with a pool::Args (the overload with callbacks).
template <class... A>
struct FirstIsArgs : std::false_type {};
template <class A0, class... A>
struct FirstIsArgs<A0, A...> : is_args<std::decay_t<A0>> {};
template <class... A>
concept NotArgsFirst = !FirstIsArgs<A...>::value;

}  // namespace pool::detail

namespace pool {

// The result type of f on one item of inputs (map, map_async).
template <class F, class Inputs>
using MapResult = detail::ItemResult<F, const Inputs>;

// The result type of f on one item of a streamed input (imap, imap_unordered, map_reduce).
template <class F, class Inputs>
using StreamResult = detail::ItemResult<F, std::remove_reference_t<Inputs>>;

// The result type of starmap's f on the elements of one item of inputs.
template <class F, class Tuples>
using StarmapResult = detail::StarItemResult<F, const Tuples>;

}  // namespace pool

#endif  // POOL_DETAIL_CALL_TYPES_H_
