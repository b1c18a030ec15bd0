// A stream's batches on a ProcessPool (the Batches of stream_engine.h): each batch is one job laid
// out in the arena, whose chunks the workers report as they finish; the parent reads each chunk's
// results when the event loop hears of it. Runs in the parent.
#ifndef POOL_DETAIL_PROCESS_STREAM_BATCHES_H_
#define POOL_DETAIL_PROCESS_STREAM_BATCHES_H_

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/detail/lifecycle.h"
#include "pool/detail/live_streams.h"
#include "pool/detail/process/core.h"
#include "pool/detail/process/job_builder.h"
#include "pool/errors.h"

namespace pool::detail {

// F: the task; Item: what the workers decode; Piece: a chunk's results (map) or its one folded
// value (reduce, when add_reduction is set).
template <class F, class Item, bool kLazyRange, class PieceType>
class ProcessStreamBatches {
  // What the stream keeps of a posted batch.
  struct Posted : JobListener {
    std::uint64_t position = 0;
    bool cancelled = false;  // by the stream: its dropped chunks need no reason
  };
  template <class Sink>
  class Listener;

 public:
  using Piece = PieceType;
  using Handle = std::shared_ptr<Posted>;
  static constexpr bool kReportsFromThreads = false;
  using Runner = void (*)(WorkerContext&, std::uint64_t);

  // retries: lost chunks run again (CallInfo::retries; -1: the pool's default).
  ProcessStreamBatches(ProcessPoolCore& core, F function, Runner runner, int retries,
                       std::function<void(JobBuilder&)> add_reduction = nullptr)
      : core_(&core),
        lifetime_(core.lifetime()),
        function_(std::move(function)),
        runner_(runner),
        retries_(retries),
        add_reduction_(std::move(add_reduction)) {}

  int size() const { return core_->size(); }
  LiveStreams* live_streams() { return lifetime_.expired() ? nullptr : &core_->live_streams(); }

  // Items are encoded into the batch's region; accepted after close(), until join() or
  // terminate() stops the workers.
  template <class Input, class Sink>
  Handle post(Input& input, typename Input::InputBatch&& batch, std::size_t first_chunk,
              std::size_t chunksize, Sink& sink) {
    check_alive();
    const bool reduce = static_cast<bool>(add_reduction_);
    JobBuilder builder(*core_, reduce ? "map_reduce" : "imap", batch.count, chunksize);
    builder.retries(retries_);
    builder.template results<Piece>(reduce);
    builder.function(function_);
    builder.index_base(static_cast<std::int64_t>(batch.first));
    if (reduce) add_reduction_(builder);
    builder.log_completions(true);
    if constexpr (kLazyRange) {
      builder.range_first(static_cast<std::int64_t>(input.item(batch, 0)));
    } else {
      builder.template items<Item>(input.begin_of(batch));
    }
    auto listener = std::make_shared<Listener<Sink>>(*core_, sink, first_chunk, batch.first);
    listener->position = builder.post(
        runner_, listener, [&](const JobDescriptor& job) { listener->job = job; },
        Lifecycle::State::kClosed);
    return listener;
  }
  void cancel(Handle& handle) {
    if (lifetime_.expired()) return;
    handle->cancelled = true;
    core_->cancel(handle->position);
  }
  void drive_until(const std::function<bool()>& ready) {
    check_alive();
    core_->drive_until(ready, std::nullopt);
  }

 private:
  void check_alive() const {
    if (lifetime_.expired()) {
      throw PoolNotRunning("pool: the ProcessPool of this stream was destroyed");
    }
  }

  template <class Sink>
  class Listener final : public Posted {
   public:
    Listener(ProcessPoolCore& core, Sink& sink, std::size_t first_chunk, std::size_t first_item)
        : core_(core), sink_(sink), first_chunk_(first_chunk), first_item_(first_item) {}

    JobDescriptor job;

    void on_chunk(std::uint64_t chunk, const std::exception_ptr& error) override {
      if (error) return sink_.failed(first_chunk_ + chunk, error);
      std::vector<Piece> pieces;
      try {
        const bool reduce = job.op_offset != 0;
        const std::uint64_t first = reduce ? chunk : chunk * job.chunksize;
        const std::uint64_t count =
            reduce ? 1 : std::min(job.chunksize, job.n_items - chunk * job.chunksize);
        read_results(core_, job, chunk, first, count, pieces);
      } catch (...) {
        return sink_.failed(first_chunk_ + chunk, std::current_exception());
      }
      sink_.done(first_chunk_ + chunk, std::move(pieces));
    }
    // A dead worker fails the chunk it ran; the batch's other chunks are dropped with the
    // reason, unless the stream cancelled them itself.
    void on_settled(const std::exception_ptr& error) override {
      if (!error || this->cancelled) return;
      reason_ = error;
      try {
        std::rethrow_exception(error);
      } catch (const WorkerDied& died) {
        const auto first = static_cast<std::int64_t>(first_item_);
        if (died.task_index() >= first) {
          sink_.failed(first_chunk_ + static_cast<std::size_t>(died.task_index() - first) /
                                          static_cast<std::size_t>(job.chunksize),
                       error);
        }
      } catch (...) {
      }
    }
    void on_retired() override { sink_.ended(first_chunk_, reason_); }

   private:
    ProcessPoolCore& core_;
    Sink& sink_;
    const std::size_t first_chunk_;
    const std::size_t first_item_;
    std::exception_ptr reason_;
  };

  ProcessPoolCore* core_;
  std::weak_ptr<void> lifetime_;
  F function_;
  Runner runner_;
  int retries_;
  std::function<void(JobBuilder&)> add_reduction_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_STREAM_BATCHES_H_
