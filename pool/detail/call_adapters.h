// Adapters that turn starmap and apply into map: a function of several arguments called on a
// tuple of them, and a void function made to return a value that can travel.
#ifndef POOL_DETAIL_CALL_ADAPTERS_H_
#define POOL_DETAIL_CALL_ADAPTERS_H_

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace pool::detail {

// The result of a void task: empty, trivially copyable.
struct Unit {
  template <class Archive>
  void serialize(Archive&) {}
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
