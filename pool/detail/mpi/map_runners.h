// The runners of MpiPool's calls: map (also starmap, apply, imap, imap_unordered) and map_reduce,
// one template instance per task type, registered by id when the program starts.
#ifndef POOL_DETAIL_MPI_MAP_RUNNERS_H_
#define POOL_DETAIL_MPI_MAP_RUNNERS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/detail/chunk_items.h"
#include "pool/detail/function_identity.h"
#include "pool/detail/mpi/runner.h"
#include "pool/detail/serialization.h"
#include "pool/detail/trace_buffer.h"

namespace pool::detail {

// Calls each(item) on every item of the chunk, in order, with `index` following the item that
// runs. kTraced: times.begin_ns is set when the first task begins.
template <class Item, bool kLazyRange, bool kTraced = false, class Each>
void for_each_rank_item(const EncodedChunk& chunk, std::int64_t& index, MpiRunTimes* times,
                        Each&& each) {
  for_each_chunk_item<Item, kLazyRange, kTraced>(
      chunk, [&](std::int64_t item) { index = item; },
      [&] {
        if constexpr (kTraced) times->begin_ns = monotonic_now_ns();
      },
      std::forward<Each>(each));
}

// A runner whose Derived::run_as<kTraced>(chunk, out, index, times) does both kinds of run.
template <class Derived>
class MpiRunnerOf : public MpiRunner {
 public:
  void run(const EncodedChunk& chunk, std::string& out, std::int64_t& index) override {
    static_cast<Derived*>(this)->template run_as<false>(chunk, out, index, nullptr);
  }
  void run_traced(const EncodedChunk& chunk, std::string& out, std::int64_t& index,
                  MpiRunTimes& times) override {
    static_cast<Derived*>(this)->template run_as<true>(chunk, out, index, &times);
  }
};

// map: one result per item, as raw bytes when trivially copyable, else cereal-encoded.
template <class F, class Item, bool kLazyRange>
class MpiMapRunner final : public MpiRunnerOf<MpiMapRunner<F, Item, kLazyRange>> {
 public:
  using Result = std::decay_t<std::invoke_result_t<F&, Item&>>;

  MpiMapRunner(const std::byte* state, std::size_t size) : function_(state, size) {}

 private:
  friend class MpiRunnerOf<MpiMapRunner>;
  template <bool kTraced>
  void run_as(const EncodedChunk& chunk, std::string& out, std::int64_t& index,
              MpiRunTimes* times) {
    F& function = function_.get();
    if constexpr (kRawBytes<Result>) {
      const std::size_t base = out.size();
      out.resize(base + chunk.count * sizeof(Result));
      char* slot = out.data() + base;
      for_each_rank_item<Item, kLazyRange, kTraced>(chunk, index, times, [&](Item& item) {
        const Result result = function(item);
        std::memcpy(slot, &result, sizeof(Result));
        slot += sizeof(Result);
      });
      if constexpr (kTraced) times->end_ns = monotonic_now_ns();
    } else if constexpr (kTraced) {
      std::vector<Result> kept;
      kept.reserve(static_cast<std::size_t>(chunk.count));
      for_each_rank_item<Item, kLazyRange, true>(
          chunk, index, times, [&](Item& item) { kept.push_back(function(item)); });
      times->end_ns = monotonic_now_ns();
      Encoder<Result> encode(out);
      for (const Result& result : kept) encode(result);
    } else {
      Encoder<Result> encode(out);
      for_each_rank_item<Item, kLazyRange>(chunk, index, nullptr,
                                           [&](Item& item) { encode(function(item)); });
    }
  }

  DecodedTask<F> function_;
};

// map_reduce: the chunk folded from init with op, as one encoded T.
template <class F, class Item, bool kLazyRange, class Op, class T>
class MpiReduceRunner final : public MpiRunnerOf<MpiReduceRunner<F, Item, kLazyRange, Op, T>> {
 public:
  MpiReduceRunner(const std::byte* state, std::size_t size)
      : MpiReduceRunner(StateReader(state, size), 0) {}

 private:
  friend class MpiRunnerOf<MpiReduceRunner>;
  template <bool kTraced>
  void run_as(const EncodedChunk& chunk, std::string& out, std::int64_t& index,
              MpiRunTimes* times) {
    F& function = function_.get();
    Op& op = op_.get();
    T value = init_.get();
    for_each_rank_item<Item, kLazyRange, kTraced>(
        chunk, index, times, [&](Item& item) { value = op(std::move(value), function(item)); });
    if constexpr (kTraced) times->end_ns = monotonic_now_ns();
    Encoder<T> encode(out);
    encode(value);
  }

  // Mem-initializers run in order, so the three values are read in the order they were packed.
  MpiReduceRunner(StateReader state, int)
      : function_(decoded<DecodedTask<F>>(state.next())),
        op_(decoded<DecodedTask<Op>>(state.next())),
        init_(decoded<DecodedFunction<T>>(state.next())) {}
  template <class Decoded>
  static Decoded decoded(std::pair<const std::byte*, std::size_t> bytes) {
    return Decoded(bytes.first, bytes.second);
  }

  DecodedTask<F> function_;
  DecodedTask<Op> op_;
  DecodedFunction<T> init_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_MPI_MAP_RUNNERS_H_
