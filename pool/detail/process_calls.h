// The ProcessPool calls as jobs: laying a call out in the arena, posting it, and turning what the
// workers finished back into values (a vector for map, a stream of batches for imap and
// map_reduce). Everything here runs in the parent.
#ifndef POOL_DETAIL_PROCESS_CALLS_H_
#define POOL_DETAIL_PROCESS_CALLS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/async_result.h"
#include "pool/detail/huge_pages.h"
#include "pool/detail/map_job.h"
#include "pool/detail/memory_limits.h"
#include "pool/detail/process_pool_core.h"
#include "pool/detail/serialization.h"
#include "pool/errors.h"
#include "pool/range.h"
#include "pool/result_stream.h"

namespace pool::detail {

// Encodes the parts of one job, lays them out in an arena region and posts it. Every size it
// computes from the call's item count is checked, and what the call will need (its region, and
// the parent's copy of its results) is checked against the memory this process can get before
// anything is encoded or posted: an impossible call throws std::length_error or OutOfMemory and
// leaves the pool as it was.
class JobBuilder {
 public:
  // call: the pool call being laid out, for messages ("map"). chunksize 0 counts as 1.
  JobBuilder(ProcessPoolCore& core, const char* call, std::uint64_t n_items,
             std::uint64_t chunksize)
      : core_(core),
        call_(call),
        what_(std::string(call) + " over " + std::to_string(n_items) + " items in chunks of " +
              std::to_string(chunksize)) {
    job_.n_items = n_items;
    job_.chunksize = chunksize == 0 ? 1 : chunksize;
    job_.n_chunks = chunk_count(n_items, job_.chunksize);
  }

  template <class F>
  void function(const F& f) {
    function_ = encode_one<F>(f);
  }
  template <class Op, class T>
  void reduction(const Op& op, const T& init) {
    op_ = encode_one<Op>(op);
    init_ = encode_one<T>(init);
  }
  void range_first(std::int64_t first) { job_.range_first = first; }
  void index_base(std::int64_t first_index) { job_.index_base = first_index; }
  // Encodes the job's items from `it`; returns the iterator past them. Call after results(), so
  // that a call whose results cannot exist fails before its inputs are copied. Throws
  // std::length_error or OutOfMemory when items of a fixed size could not be encoded (a sized
  // view such as std::views::iota can be far longer than memory).
  template <class Item, class Iterator>
  Iterator items(Iterator it) {
    if constexpr (kRawBytes<Item>) {
      // Encoded once here and copied once into the region.
      const std::uint64_t encoded = checked_product(job_.n_items, sizeof(Item), what_.c_str());
      const std::uint64_t index = checked_product(checked_sum(job_.n_chunks, 1, what_.c_str()),
                                                  sizeof(std::uint64_t), what_.c_str());
      const std::uint64_t total =
          checked_sum(checked_sum(checked_product(encoded, 2, what_.c_str()), index, what_.c_str()),
                      planned_bytes_, what_.c_str());
      if (total > memory_limit_bytes()) {
        check_memory_request(total, std::string(call_) + "'s inputs (" + describe_bytes(encoded) +
                                        ", encoded and then copied to shared memory) and results");
      }
    }
    Encoder<Item> encode(arguments_);
    argument_ends_.reserve(job_.n_chunks);
    for (std::uint64_t i = 0; i < job_.n_items; ++i, ++it) {
      encode(static_cast<const Item&>(*it));
      if ((i + 1) % job_.chunksize == 0 || i + 1 == job_.n_items) {
        argument_ends_.push_back(arguments_.size());
      }
    }
    has_arguments_ = true;
    return it;
  }
  // One result per item (map) or per chunk (reduce). The parent copies them all out of shared
  // memory into vectors (map's returned one, a stream's batch), so both copies are counted.
  // Throws std::length_error or OutOfMemory when they cannot exist.
  template <class Result>
  void results(bool per_chunk) {
    const std::uint64_t count = per_chunk ? job_.n_chunks : job_.n_items;
    returned_bytes_ = checked_product(count, sizeof(Result), what_.c_str());
    if constexpr (std::is_trivially_copyable_v<Result>) {
      result_bytes_ = returned_bytes_;
      result_alignment_ = std::max<std::size_t>(alignof(Result), 16);
    } else {
      records_ = true;  // each worker's serialized results are checked in its own buffer
    }
    planned_bytes_ = checked_sum(result_bytes_, returned_bytes_, what_.c_str());
    if (planned_bytes_ > memory_limit_bytes()) {
      const std::string shared =
          result_bytes_ != 0 ? describe_bytes(result_bytes_) + " of shared memory and as much again"
                             : describe_bytes(returned_bytes_);
      check_memory_request(planned_bytes_, std::string(call_) + "'s results (" + shared +
                                               " for the returned " +
                                               (per_chunk ? "partial values)" : "vector)"));
    }
  }
  // Chunks are reported as they finish (imap, map_reduce), not only when all have.
  void log_completions(bool notify_each_chunk) {
    if (job_.n_chunks > kMaxLoggedChunks) {
      throw std::length_error("pool: too many chunks in one batch");
    }
    log_ = true;
    job_.notify_each_chunk = notify_each_chunk ? 1 : 0;
  }

  const JobDescriptor& job() const { return job_; }

  // Lays the job out in a new region and posts it; `job()` then holds the arena offsets.
  std::uint64_t post(void (*runner)(WorkerContext&, std::uint64_t),
                     std::shared_ptr<JobListener> listener,
                     const std::function<void(const JobDescriptor&)>& before_post = {}) {
    job_.runner = runner;
    const char* what = what_.c_str();
    const std::uint64_t chunks = job_.n_chunks;
    ArenaLayout layout(what);
    layout.add(0, 64);
    const std::uint64_t function_at = layout.add(function_.size(), 16);
    const std::uint64_t op_at = op_.empty() ? 0 : layout.add(op_.size(), 16);
    const std::uint64_t init_at = init_.empty() ? 0 : layout.add(init_.size(), 16);
    const std::uint64_t index_at =
        has_arguments_
            ? layout.add(checked_product(checked_sum(chunks, 1, what), sizeof(std::uint64_t), what),
                         8)
            : 0;
    const std::uint64_t arguments_at = has_arguments_ ? layout.add(arguments_.size(), 16) : 0;
    const std::uint64_t results_at =
        result_bytes_ != 0 ? layout.add(result_bytes_, result_alignment_) : 0;
    const std::uint64_t records_at =
        records_ ? layout.add(checked_product(chunks, sizeof(ChunkRecord), what), 8) : 0;
    const std::uint64_t log_at =
        log_ ? layout.add(checked_product(chunks, sizeof(std::uint32_t), what), 8) : 0;
    const std::uint64_t failures_at =
        layout.add(static_cast<std::uint64_t>(core_.size()) * sizeof(WorkerFailure), 8);
    // Checked before the region exists: allocating it may grow the arena, and the workers could
    // not fill what the machine cannot hold.
    const std::uint64_t needed = checked_sum(layout.size(), returned_bytes_, what);
    if (needed > memory_limit_bytes()) {
      check_memory_request(needed, std::string(call_) + "'s shared-memory region (" +
                                       describe_bytes(layout.size()) +
                                       ") and the parent's copy of its results (" +
                                       describe_bytes(returned_bytes_) + ")");
    }

    const std::uint64_t region = core_.allocate_region(layout.size());
    std::byte* base = core_.arena() + region;
    // Every part sits at a non-zero offset from the arena: the allocator's header comes first.
    job_.function_offset = region + function_at;
    job_.function_size = function_.size();
    std::memcpy(base + function_at, function_.data(), function_.size());
    if (!op_.empty()) {
      job_.op_offset = region + op_at;
      job_.op_size = op_.size();
      std::memcpy(base + op_at, op_.data(), op_.size());
      job_.init_offset = region + init_at;
      job_.init_size = init_.size();
      std::memcpy(base + init_at, init_.data(), init_.size());
    }
    if (has_arguments_) {
      job_.arg_index_offset = region + index_at;
      auto* index = reinterpret_cast<std::uint64_t*>(base + index_at);
      index[0] = region + arguments_at;
      for (std::uint64_t c = 0; c < job_.n_chunks; ++c) {
        index[c + 1] = region + arguments_at + argument_ends_[c];
      }
      std::memcpy(base + arguments_at, arguments_.data(), arguments_.size());
    }
    if (result_bytes_ != 0) job_.result_offset = region + results_at;
    if (records_) job_.record_offset = region + records_at;
    if (log_) job_.log_offset = region + log_at;
    job_.failure_offset = region + failures_at;
    if (before_post) before_post(job_);
    return core_.post(job_, region, std::move(listener));
  }

 private:
  ProcessPoolCore& core_;
  const char* call_;
  std::string what_;  // the call and its sizes, for std::length_error
  JobDescriptor job_;
  std::string function_, op_, init_, arguments_;
  std::vector<std::uint64_t> argument_ends_;
  bool has_arguments_ = false;
  std::uint64_t result_bytes_ = 0;    // in the region: trivially copyable results only
  std::uint64_t returned_bytes_ = 0;  // the parent's vectors of results
  std::uint64_t planned_bytes_ = 0;   // results, counted before the inputs are encoded
  std::size_t result_alignment_ = 16;
  bool records_ = false;
  bool log_ = false;
};

// Appends `count` results of `chunk`, starting at result slot `first`, to `out`.
template <class Result>
void read_results(ProcessPoolCore& core, const JobDescriptor& job, std::uint64_t chunk,
                  std::uint64_t first, std::uint64_t count, std::vector<Result>& out) {
  if constexpr (std::is_trivially_copyable_v<Result>) {
    const auto* slots = reinterpret_cast<const Result*>(core.arena() + job.result_offset);
    out.insert(out.end(), slots + first, slots + first + count);
  } else {
    auto& record = reinterpret_cast<ChunkRecord*>(core.arena() + job.record_offset)[chunk];
    Decoder<Result> decode(core.results_of(record.worker, record.offset, record.size), record.size);
    for (std::uint64_t i = 0; i < count; ++i) out.push_back(decode.next());
    record.state = kRecordRead;
    core.release_record(record.worker);
  }
}

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

// Posts f over all of `inputs` as one job; `deliver` gets the results in input order.
template <class F, class Inputs, class Result = typename MapTypes<F, const Inputs&>::Result>
void post_map(ProcessPoolCore& core, const F& f, const Inputs& inputs, std::size_t chunksize,
              typename CollectListener<Result>::Deliver deliver,
              typename CollectListener<Result>::Fail fail) {
  using Types = MapTypes<F, const Inputs&>;
  using Item = typename Types::Item;
  core.check_can_submit();
  const std::size_t n = static_cast<std::size_t>(std::ranges::size(inputs));
  if (n == 0) return deliver({});
  if (chunksize == 0) chunksize = default_chunksize(n, static_cast<std::size_t>(core.size()));
  JobBuilder builder(core, "map", n, chunksize);
  builder.results<Result>(false);
  builder.function(f);
  if constexpr (Types::kLazyRange) {
    builder.range_first(static_cast<std::int64_t>(inputs.first()));
  } else {
    builder.items<Item>(std::ranges::begin(inputs));
  }
  auto listener =
      std::make_shared<CollectListener<Result>>(core, std::move(deliver), std::move(fail));
  builder.post(&run_map_job<F, Item, Types::kLazyRange>, listener,
               [&](const JobDescriptor& job) { listener->set_job(job); });
}

// One batch of a streamed call, shared by its listener and its stream.
template <class Result>
struct Batch {
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
  BatchListener(ProcessPoolCore& core, std::shared_ptr<Batch<Result>> batch)
      : core_(core), batch_(std::move(batch)) {}

  void on_chunk(std::uint64_t chunk, const std::exception_ptr& error) override {
    Batch<Result>& batch = *batch_;
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
    Batch<Result>& batch = *batch_;
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
  std::shared_ptr<Batch<Result>> batch_;
};

// Feeds a streamed call batch by batch from its input, keeping two batches in flight so the
// workers never wait for the reader to hand out more.
template <class F, class Inputs, class Result, class Extra = void>
class BatchFeeder {
 public:
  using View = std::views::all_t<Inputs>;
  using Item = std::ranges::range_value_t<View>;
  static constexpr bool kLazyRange = is_range<std::remove_cvref_t<Inputs>>::value;
  static constexpr std::size_t kWindow = 2;

  BatchFeeder(ProcessPoolCore& core, F function, Inputs&& inputs, std::size_t chunksize,
              bool per_chunk, std::function<void(JobBuilder&)> add_reduction,
              void (*runner)(WorkerContext&, std::uint64_t))
      : core_(&core),
        lifetime_(core.lifetime()),
        function_(std::move(function)),
        view_(std::views::all(std::forward<Inputs>(inputs))),
        next_(std::ranges::begin(view_)),
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
    if constexpr (std::ranges::sized_range<View>) {
      remaining_ = static_cast<std::uint64_t>(std::ranges::size(view_));
    }
  }
  ~BatchFeeder() {
    if (lifetime_.expired()) return;
    for (auto& batch : window_) {
      if (!batch->settled) core_->cancel(batch->position);
    }
  }
  BatchFeeder(const BatchFeeder&) = delete;
  BatchFeeder& operator=(const BatchFeeder&) = delete;

  std::deque<std::shared_ptr<Batch<Result>>>& window() { return window_; }

  // Posts batches until the window is full or the input is exhausted.
  void fill() {
    check_alive();
    while (window_.size() < kWindow && !exhausted()) post_batch();
  }
  bool exhausted() {
    if (input_error_) return true;
    if constexpr (std::ranges::sized_range<View>) {
      return remaining_ == 0;
    } else {
      return next_ == std::ranges::end(view_);
    }
  }
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
    std::uint64_t count = 0;
    if constexpr (kLazyRange) {
      count = std::min<std::uint64_t>(batch_items_, remaining_);
    } else {
      // Items are read before anything is posted; an input that throws ends the stream after
      // the items it gave (Python's imap raises it after their results).
      pending_.clear();
      try {
        while (count < batch_items_ && !input_ended()) {
          pending_.push_back(*next_);
          ++next_;
          ++count;
        }
      } catch (...) {
        // As Python's imap, the chunk the failing item belongs to yields nothing.
        input_error_ = std::current_exception();
        count -= count % chunksize_;
        pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(count), pending_.end());
      }
      if (count == 0) return;
    }
    auto batch = std::make_shared<Batch<Result>>();
    batch->first_item = first_item_;
    batch->per_chunk = per_chunk_;
    JobBuilder builder(*core_, per_chunk_ ? "map_reduce" : "imap", count, chunksize_);
    builder.results<Result>(per_chunk_);
    builder.function(function_);
    builder.index_base(static_cast<std::int64_t>(first_item_));
    if (add_reduction_) add_reduction_(builder);
    builder.log_completions(true);
    if constexpr (kLazyRange) {
      builder.range_first(static_cast<std::int64_t>(*next_));
    } else {
      builder.items<Item>(pending_.begin());
    }
    const std::uint64_t chunks = builder.job().n_chunks;
    batch->results.resize(chunks);
    batch->errors.resize(chunks);
    auto listener = std::make_shared<BatchListener<Result>>(*core_, batch);
    batch->position =
        builder.post(runner_, listener, [&](const JobDescriptor& job) { batch->job = job; });
    if constexpr (kLazyRange) next_ += static_cast<std::ptrdiff_t>(count);
    if constexpr (std::ranges::sized_range<View>) remaining_ -= count;
    first_item_ += count;
    window_.push_back(std::move(batch));
  }

  bool input_ended() {
    if constexpr (std::ranges::sized_range<View>) {
      return remaining_ == pending_.size();
    } else {
      return next_ == std::ranges::end(view_);
    }
  }

  ProcessPoolCore* core_;
  std::weak_ptr<void> lifetime_;
  F function_;
  View view_;
  std::ranges::iterator_t<View> next_;
  std::uint64_t remaining_ = 0;
  std::vector<Item> pending_;
  std::exception_ptr input_error_;
  std::size_t chunksize_;
  std::size_t batch_items_ = 0;
  bool per_chunk_;
  std::function<void(JobBuilder&)> add_reduction_;
  void (*runner_)(WorkerContext&, std::uint64_t);
  std::uint64_t first_item_ = 0;
  std::deque<std::shared_ptr<Batch<Result>>> window_;
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
      Batch<Result>& batch = *window.front();
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
        Batch<Result>& batch = *pointer;
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

#endif  // POOL_DETAIL_PROCESS_CALLS_H_
