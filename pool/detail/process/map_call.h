// map, starmap and apply on a ProcessPool: the call posted as one job, every result collected
// at once when it settles. Runs in the parent.
#ifndef POOL_DETAIL_PROCESS_MAP_CALL_H_
#define POOL_DETAIL_PROCESS_MAP_CALL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/detail/chunking.h"
#include "pool/detail/process/chunk_kernels.h"
#include "pool/detail/process/core.h"
#include "pool/detail/process/huge_pages.h"
#include "pool/detail/process/job_builder.h"

namespace pool::detail {

// map_async and friends: every result at once, when the job is done.
template <class Result>
class CollectListener final : public JobListener {
 public:
  using Deliver = std::function<void(std::vector<Result>&&)>;
  using Fail = std::function<void(std::exception_ptr)>;
  CollectListener(ProcessPoolCore& core, Deliver deliver, Fail fail)
      : core_(core), deliver_(std::move(deliver)), fail_(std::move(fail)) {}

  void set_job(const JobDescriptor& job) { job_ = job; }

  void on_settled(const std::exception_ptr& error) override {
    if (error) return fail_(error);
    std::vector<Result> results;
    try {
      results.reserve(job_.n_items);
      if constexpr (std::is_trivially_copyable_v<Result>) {
        // Faulting a large vector in 4 KiB at a time costs more than the copy itself.
        advise_huge_pages(results.data(), job_.n_items * sizeof(Result));
      }
      if (std::is_trivially_copyable_v<Result> && job_.pulled_results == 0) {
        // The slots hold every result in input order: one copy, whatever the chunksize.
        read_results(core_, job_, 0, 0, job_.n_items, results);
      } else {
        for (std::uint64_t c = 0; c < job_.n_chunks; ++c) {
          const std::uint64_t first = c * job_.chunksize;
          read_results(core_, job_, c, first, std::min(job_.chunksize, job_.n_items - first),
                       results);
        }
      }
    } catch (...) {
      return fail_(std::current_exception());
    }
    deliver_(std::move(results));
  }

 private:
  ProcessPoolCore& core_;
  JobDescriptor job_;
  Deliver deliver_;
  Fail fail_;
};

// Posts f over all of `inputs` as one job; `deliver` gets the results in input order. Returns the
// job's position, or nothing when there was nothing to post.
template <class F, class Inputs, class Result = typename MapTypes<F, const Inputs&>::Result>
std::optional<std::uint64_t> post_map(ProcessPoolCore& core, const F& f, const Inputs& inputs,
                                      std::size_t chunksize, int retries,
                                      typename CollectListener<Result>::Deliver deliver,
                                      typename CollectListener<Result>::Fail fail) {
  using Types = MapTypes<F, const Inputs&>;
  using Item = typename Types::Item;
  core.check_can_submit();
  const std::size_t n = static_cast<std::size_t>(std::ranges::size(inputs));
  if (n == 0) {
    deliver({});
    return std::nullopt;
  }
  if (chunksize == 0) chunksize = default_chunksize(n, static_cast<std::size_t>(core.size()));
  JobBuilder builder(core, "map", n, chunksize);
  builder.retries(retries);
  builder.results<Result>(false);
  builder.function(f);
  if constexpr (Types::kLazyRange) {
    builder.range_first(static_cast<std::int64_t>(inputs.first()));
  } else {
    builder.items<Item>(std::ranges::begin(inputs));
  }
  auto listener =
      std::make_shared<CollectListener<Result>>(core, std::move(deliver), std::move(fail));
  return builder.post(&run_map_job<F, Item, Types::kLazyRange>, listener,
                      [&](const JobDescriptor& job) { listener->set_job(job); });
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_MAP_CALL_H_
