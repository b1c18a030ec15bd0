// pool::Pool: what code written once against "a pool" may use, satisfied by ProcessPool,
// GilThreadPool and FreeThreadPool alike.
//
//   template <pool::Pool P> double slow_sum(P& workers, std::int64_t n) { ... workers.map(...) ...
//   }
#ifndef POOL_POOL_CONCEPT_H_
#define POOL_POOL_CONCEPT_H_

#include <concepts>
#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "pool/async_result.h"
#include "pool/range.h"
#include "pool/result_stream.h"

namespace pool {

namespace detail {
inline long identity_task(long x) { return x; }
}  // namespace detail

template <class P>
concept Pool = requires(P& pool, const std::vector<long>& items, std::size_t chunksize) {
  { pool.size() } -> std::convertible_to<int>;
  { pool.map(&detail::identity_task, items) } -> std::same_as<std::vector<long>>;
  { pool.map(&detail::identity_task, items, chunksize) } -> std::same_as<std::vector<long>>;
  { pool.map(&detail::identity_task, pool::range(0L, 1L)) } -> std::same_as<std::vector<long>>;
  { pool.map_async(&detail::identity_task, items) } -> std::same_as<AsyncResult<std::vector<long>>>;
  { pool.apply_async(&detail::identity_task, 1L) } -> std::same_as<AsyncResult<long>>;
  { pool.apply(&detail::identity_task, 1L) } -> std::same_as<long>;
  { pool.imap(&detail::identity_task, items) } -> std::same_as<ResultStream<long>>;
  {
    pool.imap_unordered(&detail::identity_task, items)
    } -> std::same_as<ResultStream<std::pair<std::size_t, long>>>;
  { pool.map_reduce(&detail::identity_task, items, std::plus<>(), 0L) } -> std::same_as<long>;
  pool.close();
  pool.join();
  pool.terminate();
};

}  // namespace pool

#endif  // POOL_POOL_CONCEPT_H_
