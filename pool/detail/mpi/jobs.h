// Rank 0's side of an MpiPool map (also starmap and apply): every chunk encoded when it is
// submitted (the inputs may go away before the result is waited for), the answers written into
// one vector. Streams are stream_batches.h.
#ifndef POOL_DETAIL_MPI_JOBS_H_
#define POOL_DETAIL_MPI_JOBS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/detail/memory_limits.h"
#include "pool/detail/mpi/job.h"
#include "pool/detail/serialization.h"
#include "pool/detail/task_failure.h"
#include "pool/errors.h"

namespace pool::detail {

// `count` items from `it` (input indices first_index...) cut into chunks of chunksize, encoded
// as rank 0 sends them: a pool::range's chunk as its first value, any other as its items.
template <class Item, bool kLazyRange, class Iterator>
std::deque<MpiChunk> cut_chunks(std::int64_t first_index, std::uint64_t count,
                                std::uint64_t chunksize, Iterator it) {
  std::deque<MpiChunk> chunks;
  for (std::uint64_t from = 0; from < count;) {
    MpiChunk& chunk = chunks.emplace_back();
    chunk.index = chunks.size() - 1;
    chunk.first_item = first_index + static_cast<std::int64_t>(from);
    chunk.count = std::min(chunksize, count - from);
    if constexpr (kLazyRange) {
      chunk.range_first = static_cast<std::int64_t>(*it);
      it += static_cast<std::ptrdiff_t>(chunk.count);
    } else {
      Encoder<Item> encode(chunk.items);
      for (std::uint64_t k = 0; k < chunk.count; ++k, ++it) encode(*it);
    }
    from += chunk.count;
  }
  return chunks;
}

// Throws std::length_error or OutOfMemory when rank 0 cannot hold a map's `items` results (R
// each) and `chunks` more chunk descriptions; returns `items`. Checked before the inputs are read
// into chunks (chunks: how many there will be) and again when the job is made (0: they exist).
template <class R>
std::size_t check_mpi_map_sizes(const char* name, std::uint64_t items, std::uint64_t chunks) {
  constexpr const char* kWhat = "MpiPool map's results and chunks (count x bytes)";
  const std::uint64_t results = checked_product(items, sizeof(R), kWhat);
  const std::uint64_t table = checked_product(chunks, sizeof(MpiChunk), kWhat);
  const std::uint64_t total = checked_sum(results, table, kWhat);
  if (beyond_memory_limit(total)) {
    check_memory_request(
        total,
        std::string(name) + "'s results (" + describe_bytes(results) + " for the returned vector)" +
            (table != 0 ? " and its chunks (" + describe_bytes(table) + ")" : std::string()));
  }
  return static_cast<std::size_t>(items);
}

// A call whose chunks are all cut when it is submitted (cut_chunks), handed out in order until
// they run out or the call stops.
class MpiQueuedJob : public MpiJob {
 public:
  MpiQueuedJob(const char* name, std::uint64_t runner, std::string state,
               std::deque<MpiChunk> chunks)
      : MpiJob(name, runner, std::move(state)), chunks_(std::move(chunks)) {}

  bool next_chunk(MpiChunk& chunk) final {
    if (exhausted()) return false;
    chunk = std::move(chunks_.front());
    chunks_.pop_front();
    started_ = true;
    return true;
  }
  bool exhausted() const final { return stopped_ || chunks_.empty(); }
  // AsyncResult::cancel: drops the call if no chunk was handed out (a chunk sent to a rank cannot
  // be taken back).
  bool cancel_if_not_started(std::exception_ptr error) {
    if (started_ || stopped_) return false;
    cancel(std::move(error));
    return true;
  }

 protected:
  void stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }

 private:
  std::deque<MpiChunk> chunks_;
  bool stopped_ = false;
  bool started_ = false;
};

// map, starmap and apply: every chunk encoded up front, results written into one vector.
template <class R>
class MpiMapJob final : public MpiQueuedJob {
  static_assert(std::is_default_constructible_v<R>,
                "MpiPool::map: results must be default-constructible (they are received into a "
                "vector of them)");

 public:
  using Succeed = std::function<void(std::vector<R>&&)>;
  using Fail = std::function<void(std::exception_ptr)>;

  MpiMapJob(const char* name, std::uint64_t runner, std::string state, std::deque<MpiChunk> chunks,
            std::size_t items, Succeed succeed, Fail fail)
      : MpiQueuedJob(name, runner, std::move(state), std::move(chunks)),
        results_(check_mpi_map_sizes<R>(name, items, 0)),
        succeed_(std::move(succeed)),
        fail_(std::move(fail)) {
    progress().total = items;
  }

  std::byte* destination(const MpiChunk& chunk, std::size_t bytes) override {
    if constexpr (kRawBytes<R>) {
      if (!stopped() && bytes == chunk.count * sizeof(R)) {
        return reinterpret_cast<std::byte*>(results_.data() + chunk.first_item);
      }
    }
    return nullptr;
  }

  void chunk_done(const MpiChunk& chunk, const std::byte* payload, std::size_t size,
                  bool in_place) override {
    if (stopped() || in_place) return;
    Decoder<R> results(payload, size);
    for (std::uint64_t i = 0; i < chunk.count; ++i) {
      results_[static_cast<std::size_t>(chunk.first_item) + i] = results.next();
    }
  }
  void chunk_failed(const MpiChunk&, TaskFailure failure) override {
    failure_.add(std::move(failure));
    stop();
  }
  void finish() override {
    if (cancelled_) return;
    if (failure_) {
      fail_(failure_.error());
    } else {
      succeed_(std::move(results_));
    }
  }
  void cancel(std::exception_ptr error) override {
    stop();
    cancelled_ = true;
    if (error) fail_(error);
  }

 private:
  std::vector<R> results_;
  Succeed succeed_;
  Fail fail_;
  LowestFailure failure_;
  bool cancelled_ = false;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_MPI_JOBS_H_
