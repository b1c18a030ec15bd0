// The chunk kernels a ProcessPool's workers run: the parent lays a call out in one arena region
// (task function, encoded chunk arguments, result slots or records, completion log, failure
// slots); each worker runs the chunks it takes from the job's cursor. Two kinds: a map job yields
// one result per item, a reduce job folds each chunk into one partial result.
#ifndef POOL_DETAIL_PROCESS_CHUNK_KERNELS_H_
#define POOL_DETAIL_PROCESS_CHUNK_KERNELS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/detail/chunk_items.h"
#include "pool/detail/chunking.h"
#include "pool/detail/memory_limits.h"
#include "pool/detail/process/protocol.h"
#include "pool/detail/process/worker_context.h"
#include "pool/detail/serialization.h"
#include "pool/range.h"

namespace pool::detail {

template <class F, class Inputs>
struct MapTypes {
  using Item = std::ranges::range_value_t<Inputs>;
  using Result = std::decay_t<std::invoke_result_t<F&, Item&>>;
  static constexpr bool kLazyRange = is_pool_range<std::remove_cvref_t<Inputs>>::value;
  // Written by the worker straight into its slot of the shared result array.
  static constexpr bool kResultInPlace = std::is_trivially_copyable_v<Result>;
};

// Calls each(item) for the items [i, end) of `chunk`; `i` follows the item being run, so a
// failure can be attributed. kTraced: the worker records spans (see run_chunks).
template <class Item, bool kLazyRange, bool kTraced, class Each>
void for_each_item(WorkerContext& context, std::uint64_t chunk, std::uint64_t& i, std::uint64_t end,
                   Each&& each) {
  const JobDescriptor& job = context.job();
  EncodedChunk items;
  items.first_item = job.index_base + static_cast<std::int64_t>(i);
  items.count = end - i;
  if constexpr (kLazyRange) {
    // In unsigned arithmetic: an unsigned range's bounds may lie past INT64_MAX as int64.
    items.range_first = static_cast<std::int64_t>(static_cast<std::uint64_t>(job.range_first) + i);
  } else {
    const auto* index =
        reinterpret_cast<const std::uint64_t*>(context.arena() + job.arg_index_offset);
    items.items = context.arena() + index[chunk];
    items.items_size = index[chunk + 1] - index[chunk];
  }
  for_each_chunk_item<Item, kLazyRange, kTraced>(
      items,
      [&](std::int64_t item) {
        context.set_current_item(item);
        i = static_cast<std::uint64_t>(item - job.index_base);
      },
      [&] { context.recorder().run_begins(); }, each);
  i = end;
}

// Stores the `count` results of one chunk: in this worker's own memory for the parent to pull,
// in place (`slots` + first), or as a record of the worker's result buffer. emit(store) calls
// store(result) for each result in order.
template <class Result, bool kTraced, class Emit>
void store_chunk_results(WorkerContext& context, std::uint64_t chunk, std::uint64_t first,
                         std::uint64_t count, Emit&& emit) {
  const JobDescriptor& job = context.job();
  if constexpr (std::is_trivially_copyable_v<Result>) {
    Result* slots = nullptr;
    std::byte* pulled = nullptr;
    if (job.pulled_results != 0) {
      pulled = context.begin_pulled(static_cast<std::size_t>(count) * sizeof(Result));
      slots = reinterpret_cast<Result*>(pulled);
    } else {
      slots = reinterpret_cast<Result*>(context.arena() + job.result_offset) + first;
    }
    std::uint64_t next = 0;
    emit([&](auto&& result) {
      ::new (static_cast<void*>(slots + next++)) Result(std::forward<decltype(result)>(result));
    });
    if constexpr (kTraced) context.recorder().run_ends();
    if (pulled != nullptr) context.end_pulled(chunk, pulled, next * sizeof(Result));
  } else {
    auto* records = reinterpret_cast<ChunkRecord*>(context.arena() + job.record_offset);
    // Traced, results are kept until the chunk's last task ran, so that encoding them shows as
    // overhead; untraced, each is encoded as soon as it is made.
    std::vector<Result> kept;
    if constexpr (kTraced) {
      emit([&](auto&& result) { kept.emplace_back(std::forward<decltype(result)>(result)); });
      context.recorder().run_ends();
    }
    std::ostream& out = context.begin_record();
    const std::size_t start = context.result_position();
    {
      cereal::BinaryOutputArchive archive(out);
      if constexpr (kTraced) {
        for (const Result& result : kept) archive(result);
      } else {
        emit([&](const Result& result) { archive(result); });
      }
    }
    records[chunk] =
        ChunkRecord{context.index(), kRecordWritten, start, context.result_position() - start, 0};
    context.end_record();
  }
}

template <bool kTraced, class Body>
void run_chunks_as(WorkerContext& context, std::uint64_t chunk, Body& body) {
  const JobDescriptor& job = context.job();
  do {
    const std::uint64_t begin = chunk * job.chunksize;
    const std::uint64_t end = begin + std::min<std::uint64_t>(job.chunksize, job.n_items - begin);
    std::uint64_t i = begin;
    if constexpr (kTraced) {
      context.recorder().set_chunk(static_cast<std::int64_t>(context.position()),
                                   static_cast<std::int64_t>(chunk),
                                   job.index_base + static_cast<std::int64_t>(begin), end - begin);
    }
    try {
      body(std::bool_constant<kTraced>{}, chunk, begin, end, i);
    } catch (...) {
      if constexpr (kTraced) context.recorder().run_ends();
      context.fail_task(chunk, job.index_base + static_cast<std::int64_t>(i),
                        std::current_exception());
      return;
    }
    context.chunk_done(chunk);
  } while (context.next_chunk(chunk));
  context.publish_done();
}

// Runs body(traced, chunk, begin, end, i) on `chunk` and every further chunk the worker takes;
// `traced` is a std::bool_constant, `i` follows the item being run. A throw fails that item's task
// and ends the worker's part of the job. Tracing is decided once per job visit, so untraced chunks
// run the same code as in a build without tracing.
template <class Body>
void run_chunks(WorkerContext& context, std::uint64_t chunk, Body&& body) {
  if (context.tracing()) {
    run_chunks_as<true>(context, chunk, body);
  } else {
    run_chunks_as<false>(context, chunk, body);
  }
}

template <class F, class Item, bool kLazyRange>
void run_map_job(WorkerContext& context, std::uint64_t chunk) {
  using Result = std::decay_t<std::invoke_result_t<F&, Item&>>;
  const JobDescriptor& job = context.job();
  JobFunction<F> decoded(context, job.function_offset, job.function_size, chunk);
  if (!decoded.ok()) return;
  F& function = decoded.get();
  run_chunks(
      context, chunk,
      [&](auto traced, std::uint64_t chunk, std::uint64_t begin, std::uint64_t end,
          std::uint64_t& i) {
        constexpr bool kTraced = decltype(traced)::value;
        store_chunk_results<Result, kTraced>(context, chunk, begin, end - begin, [&](auto&& store) {
          for_each_item<Item, kLazyRange, kTraced>(
              context, chunk, i, end, [&](Item& item) { store(std::invoke(function, item)); });
        });
      });
}

// acc = op(acc, f(item)) over a chunk, from init; one T per chunk.
template <class F, class Item, bool kLazyRange, class Op, class T>
void run_reduce_job(WorkerContext& context, std::uint64_t chunk) {
  const JobDescriptor& job = context.job();
  JobFunction<F> decoded(context, job.function_offset, job.function_size, chunk);
  if (!decoded.ok()) return;
  JobFunction<Op> decoded_op(context, job.op_offset, job.op_size, chunk);
  if (!decoded_op.ok()) return;
  const T init = Decoder<T>(context.arena() + job.init_offset, job.init_size).next();
  F& function = decoded.get();
  Op& op = decoded_op.get();
  run_chunks(
      context, chunk,
      [&](auto traced, std::uint64_t chunk, std::uint64_t, std::uint64_t end, std::uint64_t& i) {
        constexpr bool kTraced = decltype(traced)::value;
        T acc = init;
        for_each_item<Item, kLazyRange, kTraced>(context, chunk, i, end, [&](Item& item) {
          acc = std::invoke(op, std::move(acc), std::invoke(function, item));
        });
        if constexpr (kTraced) context.recorder().run_ends();
        store_chunk_results<T, kTraced>(context, chunk, chunk, 1,
                                        [&](auto&& store) { store(std::move(acc)); });
      });
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_CHUNK_KERNELS_H_
