// Rank 0's side of each MpiPool call: how its inputs become chunks and its answers a result.
// map encodes every chunk when it is submitted (the inputs may go away before the result is
// waited for); imap, imap_unordered and map_reduce read their inputs a chunk at a time and keep
// a bounded number of chunks out, so they never hold all inputs or all results.
#ifndef POOL_DETAIL_MPI_JOBS_H_
#define POOL_DETAIL_MPI_JOBS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "pool/detail/memory_limits.h"
#include "pool/detail/mpi/job.h"
#include "pool/detail/mpi/pool_core.h"
#include "pool/detail/serialization.h"
#include "pool/detail/task_failure.h"
#include "pool/errors.h"
#include "pool/range.h"
#include "pool/result_stream.h"

namespace pool::detail {

// Cuts inputs into chunks of chunksize items, in order.
template <class Inputs>
class MpiChunkReader {
 public:
  using View = std::views::all_t<Inputs>;
  using Item = std::ranges::range_value_t<View>;
  static constexpr bool kLazyRange = is_pool_range<std::remove_cvref_t<Inputs>>::value;

  MpiChunkReader(Inputs&& inputs, std::size_t chunksize)
      : view_(std::views::all(std::forward<Inputs>(inputs))),
        next_(std::ranges::begin(view_)),
        chunksize_(chunksize == 0 ? 1 : chunksize) {}

  std::optional<std::uint64_t> size() {
    if constexpr (std::ranges::sized_range<View>) {
      return static_cast<std::uint64_t>(std::ranges::size(view_));
    } else {
      return std::nullopt;
    }
  }
  bool at_end() { return next_ == std::ranges::end(view_); }

  void read(MpiChunk& chunk) {
    chunk.index = chunks_++;
    chunk.first_item = position_;
    chunk.count = 0;
    chunk.items.clear();
    if constexpr (kLazyRange) {
      const auto left = static_cast<std::uint64_t>(std::ranges::end(view_) - next_);
      chunk.count = std::min<std::uint64_t>(chunksize_, left);
      chunk.range_first = static_cast<std::int64_t>(*next_);
      next_ += static_cast<std::ptrdiff_t>(chunk.count);
    } else {
      Encoder<Item> encode(chunk.items);
      for (; chunk.count < chunksize_ && next_ != std::ranges::end(view_); ++next_) {
        encode(*next_);
        ++chunk.count;
      }
    }
    position_ += static_cast<std::int64_t>(chunk.count);
  }

 private:
  View view_;
  std::ranges::iterator_t<View> next_;
  std::size_t chunksize_;
  std::uint64_t chunks_ = 0;
  std::int64_t position_ = 0;
};

// Keeps the lowest failing task of a call.
class LowestFailure {
 public:
  void add(TaskFailure failure) {
    if (!failure_ || failure.index < failure_->index) failure_ = std::move(failure);
  }
  explicit operator bool() const { return failure_.has_value(); }
  std::exception_ptr error() const { return std::make_exception_ptr(failure_->to_error()); }

 private:
  std::optional<TaskFailure> failure_;
};

// Throws std::length_error or OutOfMemory when rank 0 cannot hold a map's `items` results (R
// each) and `chunks` more chunk descriptions; returns `items`. Checked before the inputs are read
// into chunks (chunks: how many there will be) and again when the job is made (0: they exist).
template <class R>
std::size_t check_mpi_map_sizes(const char* name, std::uint64_t items, std::uint64_t chunks) {
  constexpr const char* kWhat = "MpiPool map's results and chunks (count x bytes)";
  const std::uint64_t results = checked_product(items, sizeof(R), kWhat);
  const std::uint64_t table = checked_product(chunks, sizeof(MpiChunk), kWhat);
  const std::uint64_t total = checked_sum(results, table, kWhat);
  if (total > memory_limit_bytes()) {
    check_memory_request(
        total,
        std::string(name) + "'s results (" + describe_bytes(results) + " for the returned vector)" +
            (table != 0 ? " and its chunks (" + describe_bytes(table) + ")" : std::string()));
  }
  return static_cast<std::size_t>(items);
}

// map, starmap and apply: every chunk encoded up front, results written into one vector.
template <class R>
class MpiMapJob final : public MpiJob {
  static_assert(std::is_default_constructible_v<R>,
                "MpiPool::map: results must be default-constructible (they are received into a "
                "vector of them)");

 public:
  using Succeed = std::function<void(std::vector<R>&&)>;
  using Fail = std::function<void(std::exception_ptr)>;

  MpiMapJob(const char* name, std::uint64_t runner, std::string state, std::deque<MpiChunk> chunks,
            std::size_t items, Succeed succeed, Fail fail)
      : MpiJob(name, runner, std::move(state)),
        chunks_(std::move(chunks)),
        results_(check_mpi_map_sizes<R>(name, items, 0)),
        succeed_(std::move(succeed)),
        fail_(std::move(fail)) {
    set_total(items);
  }

  bool next_chunk(MpiChunk& chunk) override {
    if (exhausted()) return false;
    chunk = std::move(chunks_.front());
    chunks_.pop_front();
    return true;
  }
  bool exhausted() const override { return stopped_ || chunks_.empty(); }

  std::byte* destination(const MpiChunk& chunk, std::size_t bytes) override {
    if constexpr (kRawBytes<R>) {
      if (!stopped_ && bytes == chunk.count * sizeof(R)) {
        return reinterpret_cast<std::byte*>(results_.data() + chunk.first_item);
      }
    }
    return nullptr;
  }

  void chunk_done(const MpiChunk& chunk, const std::byte* payload, std::size_t size,
                  bool in_place) override {
    if (stopped_ || in_place) return;
    Decoder<R> results(payload, size);
    for (std::uint64_t i = 0; i < chunk.count; ++i) {
      results_[static_cast<std::size_t>(chunk.first_item) + i] = results.next();
    }
  }
  void chunk_failed(const MpiChunk&, TaskFailure failure) override {
    failure_.add(std::move(failure));
    stopped_ = true;
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
    stopped_ = cancelled_ = true;
    if (error) fail_(error);
  }

 private:
  std::deque<MpiChunk> chunks_;
  std::vector<R> results_;
  Succeed succeed_;
  Fail fail_;
  LowestFailure failure_;
  bool stopped_ = false;
  bool cancelled_ = false;
};

// The chunks of a call whose inputs are read as chunks go out, at most `window` chunks out
// (sent, or answered and not yet used) at a time.
template <class Inputs>
class MpiReadingJob : public MpiJob {
 public:
  MpiReadingJob(const char* name, std::uint64_t runner, std::string state, Inputs&& inputs,
                std::size_t chunksize, std::size_t window)
      : MpiJob(name, runner, std::move(state)),
        reader_(std::forward<Inputs>(inputs), chunksize),
        window_(window) {
    set_total(reader_.size());
  }

  bool next_chunk(MpiChunk& chunk) override {
    if (exhausted() || out_ >= window_) return false;
    try {
      reader_.read(chunk);
    } catch (...) {
      input_error_ = std::current_exception();
      return false;
    }
    if (chunk.count == 0) return false;
    ++out_;
    return true;
  }
  bool exhausted() const override { return stopped_ || input_error_ || reader_.at_end(); }
  // error: the pool was terminated; none: the reader abandoned the call.
  void cancel(std::exception_ptr error) override {
    stopped_ = true;
    if (error) cancel_error_ = error;
  }
  void finish() override { finished_ = true; }
  bool finished() const { return finished_; }

 protected:
  // A chunk's answer was used up (yielded or folded).
  void release_chunk() { --out_; }
  void stop() { stopped_ = true; }
  // What ends the call early: the pool's termination or an input that threw.
  void rethrow_early_end() const {
    if (cancel_error_) std::rethrow_exception(cancel_error_);
    if (input_error_) std::rethrow_exception(input_error_);
  }

 private:
  mutable MpiChunkReader<Inputs> reader_;  // at_end() compares iterators of a view
  std::size_t window_;
  std::size_t out_ = 0;
  bool stopped_ = false;
  bool finished_ = false;
  std::exception_ptr input_error_;
  std::exception_ptr cancel_error_;
};

// imap (ordered) and imap_unordered: results handed to the reader chunk by chunk. Out is R, or
// (index, R) when unordered.
template <class Inputs, class R, bool kOrdered>
class MpiStreamJob final : public MpiReadingJob<Inputs> {
 public:
  using Out = std::conditional_t<kOrdered, R, std::pair<std::size_t, R>>;
  using MpiReadingJob<Inputs>::MpiReadingJob;

  void chunk_done(const MpiChunk& chunk, const std::byte* payload, std::size_t size,
                  bool) override {
    std::vector<Out> results;
    results.reserve(static_cast<std::size_t>(chunk.count));
    Decoder<R> decode(payload, size);
    for (std::uint64_t i = 0; i < chunk.count; ++i) {
      if constexpr (kOrdered) {
        results.push_back(decode.next());
      } else {
        results.emplace_back(static_cast<std::size_t>(chunk.first_item) + i, decode.next());
      }
    }
    arrive(chunk.index, Answer(std::move(results)));
  }
  void chunk_failed(const MpiChunk& chunk, TaskFailure failure) override {
    this->stop();
    arrive(chunk.index, Answer(std::move(failure)));
  }

  // Moves the next answered chunk's results into `out`, waiting for it; false at the end.
  bool next_batch(MpiPoolCore& core, std::vector<Out>& out) {
    core.drive_until([this] { return !ready_.empty() || this->finished(); }, std::nullopt);
    if (ready_.empty()) {
      this->rethrow_early_end();
      return false;
    }
    Answer answer = std::move(ready_.front());
    ready_.pop_front();
    this->release_chunk();
    if (auto* failure = std::get_if<TaskFailure>(&answer)) {
      this->stop();
      throw failure->to_error();
    }
    auto& results = std::get<std::vector<Out>>(answer);
    std::move(results.begin(), results.end(), std::back_inserter(out));
    return true;
  }

 private:
  using Answer = std::variant<std::vector<Out>, TaskFailure>;

  void arrive(std::uint64_t index, Answer answer) {
    if constexpr (!kOrdered) {
      ready_.push_back(std::move(answer));
    } else {
      early_.emplace(index, std::move(answer));
      for (auto it = early_.find(next_index_); it != early_.end(); it = early_.find(next_index_)) {
        ready_.push_back(std::move(it->second));
        early_.erase(it);
        ++next_index_;
      }
    }
  }

  std::deque<Answer> ready_;
  std::map<std::uint64_t, Answer> early_;  // ordered: answered before a chunk ahead of them
  std::uint64_t next_index_ = 0;
};

// map_reduce: each chunk's folded value, folded into the total in input order.
template <class Inputs, class T, class Op>
class MpiReduceJob final : public MpiReadingJob<Inputs> {
 public:
  MpiReduceJob(const char* name, std::uint64_t runner, std::string state, Inputs&& inputs,
               std::size_t chunksize, std::size_t window, Op op, T init)
      : MpiReadingJob<Inputs>(name, runner, std::move(state), std::forward<Inputs>(inputs),
                              chunksize, window),
        op_(std::move(op)),
        total_(std::move(init)) {}

  void chunk_done(const MpiChunk& chunk, const std::byte* payload, std::size_t size,
                  bool) override {
    if (failure_) return;
    early_.emplace(chunk.index, Decoder<T>(payload, size).next());
    for (auto it = early_.find(next_index_); it != early_.end(); it = early_.find(next_index_)) {
      total_ = op_(std::move(total_), std::move(it->second));
      early_.erase(it);
      this->release_chunk();
      ++next_index_;
    }
  }
  void chunk_failed(const MpiChunk&, TaskFailure failure) override {
    failure_.add(std::move(failure));
    this->stop();
  }

  T result(MpiPoolCore& core) {
    core.drive_until([this] { return this->finished(); }, std::nullopt);
    if (failure_) std::rethrow_exception(failure_.error());
    this->rethrow_early_end();
    return std::move(total_);
  }

 private:
  Op op_;
  T total_;
  std::map<std::uint64_t, T> early_;
  std::uint64_t next_index_ = 0;
  LowestFailure failure_;
};

// What a ResultStream reads from an imap or imap_unordered call.
template <class Job>
class MpiStreamSource final : public StreamSource<typename Job::Out> {
 public:
  MpiStreamSource(MpiPoolCore& core, std::shared_ptr<Job> job)
      : core_(&core), job_(std::move(job)) {}
  ~MpiStreamSource() override {
    if (job_->finished()) return;
    try {
      core_->abandon(job_);
    } catch (...) {
    }
  }
  bool next_batch(std::vector<typename Job::Out>& out) override {
    return job_->next_batch(*core_, out);
  }

 private:
  MpiPoolCore* core_;
  std::shared_ptr<Job> job_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_MPI_JOBS_H_
