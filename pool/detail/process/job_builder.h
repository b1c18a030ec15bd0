// Laying a ProcessPool call out in the arena and posting it, and reading its results back. Runs
// in the parent.
#ifndef POOL_DETAIL_PROCESS_JOB_BUILDER_H_
#define POOL_DETAIL_PROCESS_JOB_BUILDER_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "pool/detail/chunking.h"
#include "pool/detail/function_identity.h"
#include "pool/detail/memory_limits.h"
#include "pool/detail/process/core.h"
#include "pool/detail/process/protocol.h"
#include "pool/detail/serialization.h"

namespace pool::detail {

// Offsets of a call's parts within its region. Sizes come from user input (item counts), so
// every step is checked: add() throws std::length_error naming `what` (the call and its sizes)
// when the region would not fit in 64 bits.
class ArenaLayout {
 public:
  explicit ArenaLayout(const char* what) : what_(what) {}

  std::uint64_t add(std::uint64_t bytes, std::uint64_t alignment) {
    size_ = checked_sum(size_, alignment - 1, what_) / alignment * alignment;
    const std::uint64_t offset = size_;
    size_ = checked_sum(size_, bytes, what_);
    return offset;
  }
  std::uint64_t size() const { return size_; }

 private:
  const char* what_;
  std::uint64_t size_ = 0;
};

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
    retries_ = core.default_retries();
  }

  template <class F>
  void function(const F& f) {
    function_ = encode_function(f);
    task_type_ = typeid(F).name();
  }
  template <class Op, class T>
  void reduction(const Op& op, const T& init) {
    op_ = encode_function(op);
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
      if (beyond_memory_limit(total)) {
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
  // Chunks lost with a dead worker are run again up to `times` times (CallInfo::retries: below 0,
  // the pool's default). Call before results(): results of a retried call stay in shared memory.
  void retries(int times) {
    if (times >= 0) retries_ = times;
  }
  // One result per item (map) or per chunk (reduce). The parent copies them all out of shared
  // memory into vectors (map's returned one, a stream's batch), so both copies are counted.
  // Throws std::length_error or OutOfMemory when they cannot exist.
  template <class Result>
  void results(bool per_chunk) {
    const std::uint64_t count = per_chunk ? job_.n_chunks : job_.n_items;
    returned_bytes_ = checked_product(count, sizeof(Result), what_.c_str());
    if constexpr (std::is_trivially_copyable_v<Result>) {
      // (The parent's staging buffer is aligned for 64 bytes.)
      if (!per_chunk && core_.pulls_results() && retries_ == 0 && alignof(Result) <= 64 &&
          returned_bytes_ >= kPullJobBytes && job_.chunksize >= kPullChunkBytes / sizeof(Result)) {
        // Left in the workers' warm private memory and pulled from there (pulled_results.h).
        job_.pulled_results = 1;
        records_ = true;
      } else {
        result_bytes_ = returned_bytes_;
        result_alignment_ = std::max<std::size_t>(alignof(Result), 16);
      }
    } else {
      records_ = true;  // each worker's serialized results are checked in its own buffer
    }
    // The workers' copy (shared, or pulled from their own memory) and the parent's.
    const std::uint64_t workers_copy = job_.pulled_results != 0 ? returned_bytes_ : result_bytes_;
    planned_bytes_ = checked_sum(workers_copy, returned_bytes_, what_.c_str());
    if (beyond_memory_limit(planned_bytes_)) {
      const char* where =
          job_.pulled_results != 0 ? " in the workers' memory" : " of shared memory";
      const std::string copies = workers_copy != 0
                                     ? describe_bytes(workers_copy) + where + " and as much again"
                                     : describe_bytes(returned_bytes_);
      check_memory_request(planned_bytes_, std::string(call_) + "'s results (" + copies +
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

  // Lays the job out in a new region and posts it; `job()` then holds the arena offsets. latest:
  // the last pool state that accepts it (a stream's batches are accepted after close()).
  std::uint64_t post(void (*runner)(WorkerContext&, std::uint64_t),
                     std::shared_ptr<JobListener> listener,
                     const std::function<void(const JobDescriptor&)>& before_post = {},
                     Lifecycle::State latest = Lifecycle::State::kOpen) {
    job_.runner = runner;
    const char* what = what_.c_str();
    const std::uint64_t chunks = job_.n_chunks;
    ArenaLayout layout(what);
    layout.add(0, 64);
    const std::uint64_t function_at = layout.add(function_.size(), 16);
    // Only workers that are not forks may need it.
    const std::string_view task_type =
        core_.start_method() != Start::fork ? std::string_view(task_type_) : std::string_view();
    const std::uint64_t task_type_at = layout.add(task_type.size(), 1);
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
    std::uint64_t log_at =
        log_ ? layout.add(checked_product(chunks, sizeof(std::uint32_t), what), 8) : 0;
    const std::uint64_t failures_bytes =
        static_cast<std::uint64_t>(core_.size()) * sizeof(WorkerFailure);
    const std::uint64_t failures_at = layout.add(failures_bytes, 8);
    // A retry needs the completion log (which chunks finished) and room of its own.
    RetryPlan retry;
    if (retries_ > 0) {
      if (chunks > kMaxLoggedChunks) {
        throw std::length_error("pool: too many chunks to retry: " + what_);
      }
      if (!log_) log_at = layout.add(chunks * sizeof(std::uint32_t), 8);
      log_ = true;
      retry.retries = retries_;
      retry.chunks = chunks;
      retry.map_offset = layout.add(chunks * sizeof(std::uint32_t), 8);
      retry.log_offset = layout.add(chunks * sizeof(std::uint32_t), 8);
      retry.failure_offset = layout.add(failures_bytes, 8);
    }
    job_.shared_out = uses_chunk_shares(chunks, static_cast<std::uint64_t>(core_.size()),
                                        core_.recycles_workers())
                          ? 1
                          : 0;
    // Checked before the region exists: allocating it may grow the arena, and the workers could
    // not fill what the machine cannot hold.
    const std::uint64_t needed = checked_sum(layout.size(), returned_bytes_, what);
    if (beyond_memory_limit(needed)) {
      check_memory_request(needed, std::string(call_) + "'s shared-memory region (" +
                                       describe_bytes(layout.size()) +
                                       ") and the parent's copy of its results (" +
                                       describe_bytes(returned_bytes_) + ")");
    }

    const std::uint64_t region = core_.allocate_region(layout.size(), latest);
    std::byte* base = core_.arena() + region;
    // Every part sits at a non-zero offset from the arena: the allocator's header comes first.
    job_.function_offset = region + function_at;
    job_.function_size = function_.size();
    std::memcpy(base + function_at, function_.data(), function_.size());
    if (!task_type.empty()) {
      job_.task_type_offset = region + task_type_at;
      job_.task_type_size = task_type.size();
      std::memcpy(base + task_type_at, task_type.data(), task_type.size());
    }
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
    if (retry.retries > 0) {
      retry.map_offset += region;
      retry.log_offset += region;
      retry.failure_offset += region;
    }
    return core_.post(job_, region, std::move(listener), latest, retry);
  }

 private:
  // A function pointer travels as its address to a fork, as its module and offset to any other
  // worker (JobFunction decodes either).
  template <class F>
  std::string encode_function(const F& f) const {
    if constexpr (kCarriesCodeAddress<F>) {
      if (core_.start_method() != Start::fork) return encode_task(f);
    }
    return encode_one<F>(f);
  }

  ProcessPoolCore& core_;
  const char* call_;
  std::string what_;  // the call and its sizes, for std::length_error
  JobDescriptor job_;
  std::string function_, op_, init_, arguments_;
  const char* task_type_ = "";
  std::vector<std::uint64_t> argument_ends_;
  bool has_arguments_ = false;
  std::uint64_t result_bytes_ = 0;    // in the region: trivially copyable results only
  std::uint64_t returned_bytes_ = 0;  // the parent's vectors of results
  std::uint64_t planned_bytes_ = 0;   // results, counted before the inputs are encoded
  std::size_t result_alignment_ = 16;
  bool records_ = false;
  bool log_ = false;
  int retries_ = 0;
};

// Appends `count` results of `chunk`, starting at result slot `first`, to `out`.
template <class Result>
void read_results(ProcessPoolCore& core, const JobDescriptor& job, std::uint64_t chunk,
                  std::uint64_t first, std::uint64_t count, std::vector<Result>& out) {
  if constexpr (std::is_trivially_copyable_v<Result>) {
    if (job.pulled_results != 0) {
      auto& record = reinterpret_cast<ChunkRecord*>(core.arena() + job.record_offset)[chunk];
      if (record.size != count * sizeof(Result)) {
        throw std::runtime_error("pool: a chunk's pulled results have the wrong size");
      }
      // Through the core's small buffer, which stays in cache: `out` is written once, by the copy.
      const std::uint64_t items =
          std::min(std::max<std::uint64_t>(1, kPullStagingBytes / sizeof(Result)), count);
      std::byte* staging = core.staging(items * sizeof(Result), alignof(Result));
      for (std::uint64_t from = 0; from < count;) {
        const std::uint64_t step = std::min(items, count - from);
        core.pull(record, from * sizeof(Result), staging, step * sizeof(Result));
        const auto* pulled = reinterpret_cast<const Result*>(staging);
        out.insert(out.end(), pulled, pulled + step);
        from += step;
      }
      core.release(record);
      return;
    }
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

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_JOB_BUILDER_H_
