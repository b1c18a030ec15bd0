// pool::fn<&f>: a plain function as a task the compiler can inline.
//
//   long square(long x) { return x * x; }
//   workers.map(pool::fn<&square>, pool::range(0L, n));   // as fast as the same lambda
//   workers.map(square, pool::range(0L, n));              // works too: a call through a pointer
//
// A function pointer passed as a value is only known when the call runs, so the chunk loop calls
// through it for every item and nothing can be inlined; on small tasks that costs 2-5x. fn<&f>
// names the function in its type instead: an empty object that travels to processes and ranks
// as a capture-less lambda does, on every pool.
#ifndef POOL_FN_H_
#define POOL_FN_H_

#include <functional>
#include <type_traits>
#include <utility>

namespace pool {

template <auto F>
requires std::is_pointer_v<decltype(F)> && std::is_function_v<std::remove_pointer_t<decltype(F)>>
struct Fn {
  template <class... A>
  requires std::is_invocable_v<decltype(F), A...>
  decltype(auto) operator()(A&&... args) const { return std::invoke(F, std::forward<A>(args)...); }
};

template <auto F>
inline constexpr Fn<F> fn{};

}  // namespace pool

#endif  // POOL_FN_H_
