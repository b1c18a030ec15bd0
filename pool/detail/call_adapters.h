// Adapters that turn starmap and apply into map: a function of several arguments called on a
// tuple of them, and a void function made to return a value that can travel.
#ifndef POOL_DETAIL_CALL_ADAPTERS_H_
#define POOL_DETAIL_CALL_ADAPTERS_H_

#include <functional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

namespace pool::detail {

// The result of a void task: empty, trivially copyable.
struct Unit {
  template <class Archive>
  void serialize(Archive&) {}
};

// A task whose first parameter is a std::stop_token (apply_async, submit on a thread pool): it
// gets the token that the result's cancel() requests stop on.
template <class F, class... A>
concept TakesStopToken = std::is_invocable_v < std::decay_t<F>
&, std::stop_token,
    std::decay_t<A>... > &&!std::is_invocable_v<std::decay_t<F>&, std::decay_t<A>...>;

template <class F>
struct WithStopToken {
  F function;
  std::stop_token token;

  template <class... A>
  auto operator()(A&&... args) -> std::invoke_result_t<F&, const std::stop_token&, A...> {
    return std::invoke(function, token, std::forward<A>(args)...);
  }
};

// f(std::get<0>(t), std::get<1>(t), ...) for a tuple-like item t; Unit when f returns void.
// kMoveArguments: the elements are passed as rvalues (apply's own copies of its arguments),
// otherwise as lvalues (starmap's items, as map passes its items).
template <class F, bool kMoveArguments = false>
struct Starred {
  F function;

  template <class Tuple>
  decltype(auto) operator()(Tuple& arguments) {
    using Passed = std::conditional_t<kMoveArguments, Tuple&&, Tuple&>;
    using Raw = decltype(std::apply(function, static_cast<Passed>(arguments)));
    if constexpr (std::is_void_v<Raw>) {
      std::apply(function, static_cast<Passed>(arguments));
      return Unit{};
    } else {
      return std::apply(function, static_cast<Passed>(arguments));
    }
  }

  // Only instantiated for functions that are not trivially copyable, which need cereal.
  template <class Archive>
  void serialize(Archive& archive) {
    archive(function);
  }
};

// apply's f(args...) as a task over one tuple of arguments.
template <class F>
using Applied = Starred<F, true>;

template <class F>
Starred<std::decay_t<F>> starred(F&& function) {
  return {std::forward<F>(function)};
}

// What f returns when called on the elements of Tuple.
template <class F, class Tuple>
using StarResult = std::decay_t<decltype(std::apply(std::declval<F&>(), std::declval<Tuple&>()))>;

}  // namespace pool::detail

#endif  // POOL_DETAIL_CALL_ADAPTERS_H_
