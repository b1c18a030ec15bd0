// pool::args(a, b, ...): the argument tuple of apply_async when callbacks follow it, as Python's
// apply_async(func, args=(a, b), callback=..., error_callback=...).
//
//   workers.apply_async(power, pool::args(2.0, 10), [](const double& x) { ... });
#ifndef POOL_ARGS_H_
#define POOL_ARGS_H_

#include <tuple>
#include <type_traits>
#include <utility>

namespace pool {

template <class... T>
struct Args {
  std::tuple<T...> values;
};

template <class... T>
Args<std::decay_t<T>...> args(T&&... values) {
  return {std::tuple<std::decay_t<T>...>(std::forward<T>(values)...)};
}

template <class T>
struct is_args : std::false_type {};
template <class... T>
struct is_args<Args<T...>> : std::true_type {};

}  // namespace pool

#endif  // POOL_ARGS_H_
