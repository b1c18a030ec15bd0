// pool::ProcessPool: Python's multiprocessing.Pool for C++, on forked worker processes.
//
//   pool::ProcessPool workers(4);
//   std::vector<double> roots = workers.map([](int x) { return std::sqrt(x); }, pool::range(0,
//   1000));
//
// Contract
// - Workers are forked once, in the constructor, and replaced when one dies. Create the pool
//   before the process starts threads: fork() copies only the calling thread, and any mutex
//   another thread held stays locked forever in the workers. The constructor refuses to fork when
//   other threads exist, unless ProcessPoolOptions::allow_fork_with_threads is set. A worker that
//   dies is replaced by a fork at the next call, so a pool whose process started threads later
//   (a thread pool, OpenMP) forks in a threaded process then: destroy such threads first.
// - A task function may be a function pointer, a lambda or a function object. It runs in another
//   process, so its state is copied there: it must be trivially copyable (a lambda capturing
//   numbers by value) or serializable with cereal (a struct with serialize()). Do not capture by
//   reference or hold pointers: they would point into the worker's copy of the parent's memory as
//   it was when the worker was forked. Arguments and results follow the same rule.
// - map() blocks until every item is done and returns the results in input order. If a task
//   throws, the rest of the call is cancelled and map() throws TaskError for the lowest failing
//   index; if a worker dies, map() throws WorkerDied after replacing it. The pool stays usable.
// - Results come back through shared memory: a trivially copyable result is written by the
//   worker straight into its slot and copied once into the returned vector; other results are
//   cereal-serialized into the worker's result buffer and deserialized once.
// - The destructor stops and reaps every worker and removes every shared-memory segment; workers
//   also die if the parent dies (PR_SET_PDEATHSIG).
// - Not thread-safe: use a pool from one thread. A worker process cannot use its parent's pool.
// - Linux only.
#ifndef POOL_PROCESS_POOL_H_
#define POOL_PROCESS_POOL_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <ranges>
#include <string>
#include <type_traits>
#include <vector>

#include "pool/detail/map_job.h"
#include "pool/detail/process_pool_core.h"
#include "pool/detail/serialization.h"
#include "pool/range.h"

namespace pool {

struct ProcessPoolOptions {
  // Fork even though other threads run; only safe if no thread holds a lock a task will need
  // (malloc's are handled by glibc, but a logger's or an I/O library's are not).
  bool allow_fork_with_threads = false;
};

// The result type of map(f, inputs).
template <class F, class Inputs>
using MapResult = typename detail::MapTypes<std::decay_t<F>, Inputs>::Result;

class ProcessPool {
 public:
  // One worker per CPU this process may use (see available_cpus()).
  ProcessPool();
  // Throws std::invalid_argument if ncores < 1, std::logic_error if other threads run,
  // std::system_error if fork or shared memory fails.
  explicit ProcessPool(int ncores, ProcessPoolOptions options = {});
  ~ProcessPool();
  ProcessPool(ProcessPool&&) noexcept;
  ProcessPool& operator=(ProcessPool&&) noexcept;

  // The number of worker processes.
  int size() const;

  // f applied to every item of inputs, in input order. inputs is any sized range (vector, array,
  // list, pool::range); chunksize 0 means Python's default, ceil(len / (4 * size())).
  template <class F, class Inputs>
  std::vector<MapResult<F, Inputs>> map(F&& f, const Inputs& inputs, std::size_t chunksize = 0);

 private:
  std::unique_ptr<detail::ProcessPoolCore> core_;
};

template <class F, class Inputs>
std::vector<MapResult<F, Inputs>> ProcessPool::map(F&& f, const Inputs& inputs,
                                                   std::size_t chunksize) {
  using Function = std::decay_t<F>;
  using Types = detail::MapTypes<Function, Inputs>;
  using Item = typename Types::Item;
  using Result = typename Types::Result;
  static_assert(std::ranges::sized_range<const Inputs>,
                "ProcessPool::map: inputs must be a sized range (vector, array, list, "
                "pool::range)");
  static_assert(detail::kTransferable<Function>,
                "ProcessPool::map: the task function is copied to worker processes, so it must be "
                "trivially copyable (a function pointer, or a lambda capturing numbers by value) "
                "or a function object with a cereal serialize() member");
  static_assert(Types::kLazyRange || detail::kTransferable<Item>,
                "ProcessPool::map: input items must be trivially copyable or cereal-serializable");
  static_assert(!std::is_void_v<Result>, "ProcessPool::map: the task function must return a value");
  static_assert(detail::kTransferable<Result> &&
                    (Types::kResultInPlace || std::is_default_constructible_v<Result>),
                "ProcessPool::map: results must be trivially copyable, or default-constructible "
                "and cereal-serializable");
  if (!core_) throw std::logic_error("pool: this ProcessPool was moved from");

  const std::size_t n = static_cast<std::size_t>(std::ranges::size(inputs));
  if (n == 0) return {};
  if (chunksize == 0) chunksize = detail::default_chunksize(n, static_cast<std::size_t>(size()));
  const std::size_t n_chunks = (n + chunksize - 1) / chunksize;

  const std::string function_bytes = detail::encode_one<Function>(f);
  std::string arg_bytes;
  std::vector<std::uint64_t> arg_ends;  // where each chunk's encoded arguments end
  if constexpr (!Types::kLazyRange) {
    arg_ends.reserve(n_chunks);
    detail::Encoder<Item> encode(arg_bytes);
    std::size_t count = 0;
    for (const auto& item : inputs) {
      encode(item);
      if (++count % chunksize == 0 || count == n) arg_ends.push_back(arg_bytes.size());
    }
  }

  detail::ArenaLayout layout;
  detail::JobDescriptor job;
  job.runner = &detail::run_map_job<Function, Inputs>;
  job.n_items = n;
  job.chunksize = chunksize;
  job.n_chunks = n_chunks;
  job.function_offset = layout.add(function_bytes.size(), 16);
  job.function_size = function_bytes.size();
  std::uint64_t arg_bytes_offset = 0;
  if constexpr (Types::kLazyRange) {
    job.range_first = static_cast<std::int64_t>(inputs.first());
  } else {
    job.arg_index_offset = layout.add((n_chunks + 1) * sizeof(std::uint64_t), 8);
    arg_bytes_offset = layout.add(arg_bytes.size(), 16);
  }
  if constexpr (Types::kResultInPlace) {
    job.result_offset = layout.add(n * sizeof(Result), alignof(Result) < 16 ? 16 : alignof(Result));
  } else {
    job.record_offset = layout.add(n_chunks * sizeof(detail::ChunkRecord), 8);
  }

  std::byte* arena = core_->reserve_arena(layout.size());
  std::memcpy(arena + job.function_offset, function_bytes.data(), function_bytes.size());
  if constexpr (!Types::kLazyRange) {
    auto* index = reinterpret_cast<std::uint64_t*>(arena + job.arg_index_offset);
    index[0] = arg_bytes_offset;
    for (std::size_t c = 0; c < n_chunks; ++c) index[c + 1] = arg_bytes_offset + arg_ends[c];
    std::memcpy(arena + arg_bytes_offset, arg_bytes.data(), arg_bytes.size());
  }

  core_->run(job);

  if constexpr (Types::kResultInPlace) {
    const auto* slots = reinterpret_cast<const Result*>(arena + job.result_offset);
    return std::vector<Result>(slots, slots + n);
  } else {
    std::vector<Result> results;
    results.reserve(n);
    const auto* records = reinterpret_cast<const detail::ChunkRecord*>(arena + job.record_offset);
    for (std::size_t c = 0; c < n_chunks; ++c) {
      const detail::ChunkRecord record = records[c];
      detail::Decoder<Result> decode(core_->results_of(record.worker, record.offset, record.size),
                                     record.size);
      const std::size_t items = std::min(chunksize, n - c * chunksize);
      for (std::size_t i = 0; i < items; ++i) results.push_back(decode.next());
    }
    return results;
  }
}

}  // namespace pool

#endif  // POOL_PROCESS_POOL_H_
