// map() as a job: the parent lays the call out in the arena (task function, encoded chunk
// arguments, result slots) and each worker runs chunks it takes from the shared cursor.
#ifndef POOL_DETAIL_MAP_JOB_H_
#define POOL_DETAIL_MAP_JOB_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <ranges>
#include <string>
#include <type_traits>
#include <vector>

#include "pool/detail/protocol.h"
#include "pool/detail/serialization.h"
#include "pool/detail/worker_context.h"
#include "pool/range.h"

namespace pool::detail {

// Python's Pool.map rule: ceil(len / (4 * workers)), at least 1.
inline std::size_t default_chunksize(std::size_t items, std::size_t workers) {
  const std::size_t per = 4 * (workers == 0 ? 1 : workers);
  const std::size_t chunk = (items + per - 1) / per;
  return chunk == 0 ? 1 : chunk;
}

template <class F, class Inputs>
struct MapTypes {
  using Item = std::ranges::range_value_t<const Inputs>;
  using Result = std::decay_t<std::invoke_result_t<F&, Item&>>;
  static constexpr bool kLazyRange = is_range<std::decay_t<Inputs>>::value;
  // Written by the worker straight into its slot of the shared result array.
  static constexpr bool kResultInPlace = std::is_trivially_copyable_v<Result>;
};

// Offsets of a call's parts in the arena.
class ArenaLayout {
 public:
  std::uint64_t add(std::size_t bytes, std::size_t alignment) {
    size_ = (size_ + alignment - 1) / alignment * alignment;
    const std::uint64_t offset = size_;
    size_ += bytes;
    return offset;
  }
  std::size_t size() const { return size_; }

 private:
  std::size_t size_ = 0;
};

template <class F, class Inputs>
void run_map_job(WorkerContext& context) {
  using Types = MapTypes<F, Inputs>;
  using Item = typename Types::Item;
  using Result = typename Types::Result;
  const JobDescriptor& job = context.job();
  std::byte* arena = context.arena();
  DecodedFunction<F> decoded(arena + job.function_offset, job.function_size);
  F& function = decoded.get();
  const auto* arg_index = reinterpret_cast<const std::uint64_t*>(arena + job.arg_index_offset);
  [[maybe_unused]] auto* slots = reinterpret_cast<Result*>(arena + job.result_offset);
  [[maybe_unused]] auto* records = reinterpret_cast<ChunkRecord*>(arena + job.record_offset);

  std::uint64_t chunk = 0;
  while (context.next_chunk(chunk)) {
    const std::uint64_t begin = chunk * job.chunksize;
    const std::uint64_t end = std::min<std::uint64_t>(begin + job.chunksize, job.n_items);
    std::uint64_t i = begin;
    try {
      auto emit = [&](auto&& store) {
        if constexpr (Types::kLazyRange) {
          for (; i < end; ++i) {
            context.set_current_item(static_cast<std::int64_t>(i));
            Item item = static_cast<Item>(job.range_first + static_cast<std::int64_t>(i));
            store(std::invoke(function, item));
          }
        } else {
          Decoder<Item> arguments(arena + arg_index[chunk],
                                  arg_index[chunk + 1] - arg_index[chunk]);
          for (; i < end; ++i) {
            context.set_current_item(static_cast<std::int64_t>(i));
            Item item = arguments.next();
            store(std::invoke(function, item));
          }
        }
      };
      if constexpr (Types::kResultInPlace) {
        emit([&](auto&& result) {
          ::new (static_cast<void*>(slots + i)) Result(std::forward<decltype(result)>(result));
        });
      } else {
        const std::size_t start = context.result_position();
        {
          cereal::BinaryOutputArchive archive(context.result_stream());
          emit([&](const Result& result) { archive(result); });
        }
        records[chunk] = ChunkRecord{context.index(), 0, start, context.result_position() - start};
      }
    } catch (...) {
      context.fail_task(static_cast<std::int64_t>(i), std::current_exception());
      return;
    }
  }
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_MAP_JOB_H_
