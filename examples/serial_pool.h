// examples::SerialPool: the serial baseline with a pool's call shape. map and map_reduce are one
// plain loop in the caller, so an example written once against "a pool" also runs serially
// (--backend serial) and its speedup is measured against the same code without any pool.
//
// Only what the examples call: size() (always 1), map and map_reduce. chunksize is accepted and
// ignored. Exceptions from f or op propagate unchanged (no TaskError wrapping).
#ifndef EXAMPLES_SERIAL_POOL_H_
#define EXAMPLES_SERIAL_POOL_H_

#include <cstddef>
#include <iterator>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

namespace examples {

class SerialPool {
 public:
  int size() const { return 1; }

  // f(item) for every item, in input order.
  template <class F, class Inputs>
  auto map(F&& f, const Inputs& inputs, std::size_t /*chunksize*/ = 0) {
    using R = std::decay_t<std::invoke_result_t<F&, std::ranges::range_reference_t<const Inputs>>>;
    std::vector<R> results;
    if constexpr (std::ranges::sized_range<const Inputs>)
      results.reserve(std::ranges::size(inputs));
    for (auto&& item : inputs) results.push_back(f(item));
    return results;
  }

  // op(...op(op(init, f(x0)), f(x1))..., f(xn)): the serial fold every pool's map_reduce equals.
  template <class F, class Inputs, class Op, class T>
  T map_reduce(F&& f, const Inputs& inputs, Op op, T init, std::size_t /*chunksize*/ = 0) {
    for (auto&& item : inputs) init = op(std::move(init), f(item));
    return init;
  }
};

}  // namespace examples

#endif  // EXAMPLES_SERIAL_POOL_H_
