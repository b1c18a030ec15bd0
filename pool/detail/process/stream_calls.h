// imap, imap_unordered and map_reduce on a ProcessPool: the input posted batch by batch as jobs
// whose chunks are reported as they finish, and handed to the reader in input or completion
// order. Runs in the parent.
#ifndef POOL_DETAIL_PROCESS_STREAM_CALLS_H_
#define POOL_DETAIL_PROCESS_STREAM_CALLS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/detail/chunking.h"
#include "pool/detail/process/core.h"
#include "pool/detail/process/job_builder.h"
#include "pool/detail/stream_input.h"
#include "pool/errors.h"
#include "pool/range.h"
#include "pool/result_stream.h"

namespace pool::detail {

// One batch of a streamed call, shared by its listener and its stream.
template <class Result>
struct StreamBatch {
  std::uint64_t position = 0;
  std::uint64_t first_item = 0;  // input index of the batch's first item
  JobDescriptor job;
  bool per_chunk = false;                                   // reduce jobs: one result per chunk
  std::vector<std::optional<std::vector<Result>>> results;  // by chunk, once ready
  std::vector<std::exception_ptr> errors;                   // by chunk, if its task threw
  std::deque<std::uint64_t> finished;                       // chunks in completion order
  std::exception_ptr error;                                 // why the job ended early
  std::optional<std::uint64_t> error_chunk;                 // the chunk a dead worker was running
  bool settled = false;
  bool retired = false;       // no chunk will be reported any more
  std::uint64_t yielded = 0;  // chunks handed to the reader

  std::uint64_t items_in(std::uint64_t chunk) const {
    const std::uint64_t first = chunk * job.chunksize;
    return std::min(job.chunksize, job.n_items - first);
  }
};

template <class Result>
class BatchListener final : public JobListener {
 public:
  BatchListener(ProcessPoolCore& core, std::shared_ptr<StreamBatch<Result>> batch)
      : core_(core), batch_(std::move(batch)) {}

  void on_chunk(std::uint64_t chunk, const std::exception_ptr& error) override {
    StreamBatch<Result>& batch = *batch_;
    if (error) {
      batch.errors[chunk] = error;
    } else {
      std::vector<Result> values;
      try {
        if (batch.per_chunk) {
          read_results(core_, batch.job, chunk, chunk, 1, values);
        } else {
          read_results(core_, batch.job, chunk, chunk * batch.job.chunksize, batch.items_in(chunk),
                       values);
        }
      } catch (...) {
        batch.errors[chunk] = std::current_exception();
      }
      if (!batch.errors[chunk]) batch.results[chunk].emplace(std::move(values));
    }
    batch.finished.push_back(chunk);
  }
  void on_settled(const std::exception_ptr& error) override {
    StreamBatch<Result>& batch = *batch_;
    batch.settled = true;
    batch.error = error;
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const WorkerDied& died) {
      const auto first = static_cast<std::int64_t>(batch.first_item);
      if (died.task_index() >= first) {
        batch.error_chunk =
            static_cast<std::uint64_t>(died.task_index() - first) / batch.job.chunksize;
      }
    } catch (...) {
    }
  }
  void on_retired() override { batch_->retired = true; }

 private:
  ProcessPoolCore& core_;
  std::shared_ptr<StreamBatch<Result>> batch_;
};

// Feeds a streamed call batch by batch from its input, keeping two batches in flight so the
// workers never wait for the reader to hand out more.
template <class F, class Inputs, class Result>
class BatchFeeder {
 public:
  using Input = StreamInput<Inputs>;
  using Item = typename Input::Item;
  static constexpr bool kLazyRange = is_pool_range<std::remove_cvref_t<Inputs>>::value;
  static constexpr std::size_t kWindow = 2;

  BatchFeeder(ProcessPoolCore& core, F function, Inputs&& inputs, std::size_t chunksize,
              bool per_chunk, std::function<void(JobBuilder&)> add_reduction,
              void (*runner)(WorkerContext&, std::uint64_t))
      : core_(&core),
        lifetime_(core.lifetime()),
        function_(std::move(function)),
        input_(std::forward<Inputs>(inputs)),
        chunksize_(chunksize == 0 ? 1 : chunksize),
        per_chunk_(per_chunk),
        add_reduction_(std::move(add_reduction)),
        runner_(runner) {
    const std::uint64_t chunks =
        std::min<std::uint64_t>(std::max<std::uint64_t>(2 * static_cast<std::uint64_t>(core.size()),
                                                        chunk_count(4096, chunksize_)),
                                kMaxLoggedChunks);
    // A huge chunksize makes one batch of everything rather than an overflowed, empty one.
    batch_items_ = chunksize_ > SIZE_MAX / chunks ? SIZE_MAX : chunks * chunksize_;
  }
  // Cancels the chunks not started and, as the stream contract says, waits for the running ones:
  // no task of the stream runs once it is gone.
  ~BatchFeeder() {
    if (lifetime_.expired()) return;
    for (auto& batch : window_) {
      if (!batch->settled) core_->cancel(batch->position);
    }
    try {
      core_->drive_until(
          [this] {
            return std::all_of(window_.begin(), window_.end(),
                               [](const auto& batch) { return batch->retired; });
          },
          std::nullopt);
    } catch (...) {
      // Interrupted or terminated meanwhile: the pool stopped its workers.
    }
  }
  BatchFeeder(const BatchFeeder&) = delete;
  BatchFeeder& operator=(const BatchFeeder&) = delete;

  std::deque<std::shared_ptr<StreamBatch<Result>>>& window() { return window_; }

  // Posts batches until the window is full or the input is exhausted.
  void fill() {
    check_alive();
    while (window_.size() < kWindow && !exhausted()) post_batch();
  }
  bool exhausted() const { return input_done_; }
  // Thrown by the stream once every result before it was handed out.
  void rethrow_input_error() {
    if (input_error_) std::rethrow_exception(std::exchange(input_error_, nullptr));
  }
  void drive_until(const std::function<bool()>& done) {
    check_alive();
    core_->drive_until(done, std::nullopt);
  }

 private:
  void check_alive() const {
    if (lifetime_.expired()) {
      throw PoolNotRunning("pool: the ProcessPool of this stream was destroyed");
    }
  }

  void post_batch() {
    // Items are read before anything is posted; an input that throws ends the stream after the
    // items it gave (Python's imap raises it after their results).
    auto items = input_.next_batch(batch_items_, chunksize_, input_error_);
    if (input_error_ || items.count < batch_items_) input_done_ = true;
    const std::uint64_t count = items.count;
    if (count == 0) return;
    auto batch = std::make_shared<StreamBatch<Result>>();
    batch->first_item = first_item_;
    batch->per_chunk = per_chunk_;
    JobBuilder builder(*core_, per_chunk_ ? "map_reduce" : "imap", count, chunksize_);
    builder.results<Result>(per_chunk_);
    builder.function(function_);
    builder.index_base(static_cast<std::int64_t>(first_item_));
    if (add_reduction_) add_reduction_(builder);
    builder.log_completions(true);
    if constexpr (kLazyRange) {
      builder.range_first(static_cast<std::int64_t>(input_.item(items, 0)));
    } else {
      builder.items<Item>(input_.begin_of(items));
    }
    const std::uint64_t chunks = builder.job().n_chunks;
    batch->results.resize(chunks);
    batch->errors.resize(chunks);
    auto listener = std::make_shared<BatchListener<Result>>(*core_, batch);
    batch->position =
        builder.post(runner_, listener, [&](const JobDescriptor& job) { batch->job = job; });
    first_item_ += count;
    window_.push_back(std::move(batch));
  }

  ProcessPoolCore* core_;
  std::weak_ptr<void> lifetime_;
  F function_;
  Input input_;
  bool input_done_ = false;
  std::exception_ptr input_error_;
  std::size_t chunksize_;
  std::size_t batch_items_ = 0;
  bool per_chunk_;
  std::function<void(JobBuilder&)> add_reduction_;
  void (*runner_)(WorkerContext&, std::uint64_t);
  std::uint64_t first_item_ = 0;
  std::deque<std::shared_ptr<StreamBatch<Result>>> window_;
};

// Hands out each batch's results in input order.
template <class Feeder, class Result>
class OrderedSource final : public StreamSource<Result> {
 public:
  explicit OrderedSource(std::unique_ptr<Feeder> feeder) : feeder_(std::move(feeder)) {}

  bool next_batch(std::vector<Result>& out) override {
    auto& window = feeder_->window();
    for (;;) {
      feeder_->fill();
      if (window.empty()) {
        feeder_->rethrow_input_error();
        return false;
      }
      StreamBatch<Result>& batch = *window.front();
      const std::uint64_t chunks = batch.results.size();
      if (batch.yielded == chunks) {
        window.pop_front();
        continue;
      }
      while (batch.yielded < chunks && batch.results[batch.yielded]) {
        for (Result& value : *batch.results[batch.yielded]) out.push_back(std::move(value));
        batch.results[batch.yielded].reset();
        ++batch.yielded;
      }
      if (!out.empty()) return true;
      const std::uint64_t wanted = batch.yielded;
      if (std::exception_ptr error = batch.errors[wanted]) std::rethrow_exception(error);
      // After a death, chunks before the dead one are still awaited: they may finish.
      auto failed_here = [&batch, wanted] {
        return batch.error &&
               (batch.retired || (batch.error_chunk && *batch.error_chunk <= wanted));
      };
      if (failed_here()) std::rethrow_exception(batch.error);
      if (batch.retired) throw std::logic_error("pool: a finished batch lost a chunk");
      feeder_->drive_until([&batch, wanted, &failed_here] {
        return batch.results[wanted] || batch.errors[wanted] || batch.retired || failed_here();
      });
    }
  }

 private:
  std::unique_ptr<Feeder> feeder_;
};

// Hands out (index, result) pairs in the order chunks finish.
template <class Feeder, class Result>
class UnorderedSource final : public StreamSource<std::pair<std::size_t, Result>> {
 public:
  explicit UnorderedSource(std::unique_ptr<Feeder> feeder) : feeder_(std::move(feeder)) {}

  bool next_batch(std::vector<std::pair<std::size_t, Result>>& out) override {
    auto& window = feeder_->window();
    for (;;) {
      feeder_->fill();
      while (!window.empty() && window.front()->yielded == window.front()->results.size()) {
        window.pop_front();
        feeder_->fill();
      }
      if (window.empty()) {
        feeder_->rethrow_input_error();
        return false;
      }
      for (auto& pointer : window) {
        StreamBatch<Result>& batch = *pointer;
        while (!batch.finished.empty()) {
          const std::uint64_t chunk = batch.finished.front();
          if (batch.errors[chunk]) {
            if (!out.empty()) return true;  // what finished before the failure comes first
            batch.finished.pop_front();
            ++batch.yielded;
            std::rethrow_exception(batch.errors[chunk]);
          }
          batch.finished.pop_front();
          ++batch.yielded;
          std::uint64_t index = batch.first_item + chunk * batch.job.chunksize;
          for (Result& value : *batch.results[chunk]) {
            out.emplace_back(static_cast<std::size_t>(index++), std::move(value));
          }
          batch.results[chunk].reset();
        }
      }
      if (!out.empty()) return true;
      for (auto& pointer : window) {
        if (pointer->error) std::rethrow_exception(pointer->error);
        if (pointer->retired && pointer->yielded < pointer->results.size()) {
          throw std::logic_error("pool: a finished batch lost a chunk");
        }
      }
      feeder_->drive_until([&window] {
        for (auto& pointer : window) {
          if (!pointer->finished.empty() || pointer->error ||
              (pointer->retired && pointer->yielded < pointer->results.size())) {
            return true;
          }
        }
        return false;
      });
    }
  }

 private:
  std::unique_ptr<Feeder> feeder_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_STREAM_CALLS_H_
