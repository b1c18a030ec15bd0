// How a worker rank runs the chunks of an MpiPool call. Ranks do not share an address space, so
// a call names its code by a registry id: every task type a program hands to an MpiPool registers
// its runner when the program starts, on every rank (same binary, same ids), and rank 0 sends the
// id with the call's encoded state (task function, and op and init for map_reduce).
#ifndef POOL_DETAIL_MPI_RUNNER_H_
#define POOL_DETAIL_MPI_RUNNER_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "pool/detail/call_adapters.h"
#include "pool/detail/serialization.h"
#include "pool/detail/task_failure.h"
#include "pool/detail/trace_buffer.h"

namespace pool::detail {

// Function pointers differ between processes that were not forked from each other (ASLR), so
// they travel as their module and offset and are relocated on arrival.
template <class F>
inline constexpr bool kFunctionPointer =
    std::is_pointer_v<F>&& std::is_function_v<std::remove_pointer_t<F>>;
std::string encode_code_address(const void* address);
const void* decode_code_address(const std::byte* data, std::size_t size);

// A task function (or op) as it travels to another rank.
template <class F>
std::string encode_task(const F& function) {
  if constexpr (kFunctionPointer<F>) {
    return encode_code_address(reinterpret_cast<const void*>(function));
  } else {
    return encode_one(function);
  }
}
template <class G>
std::string encode_task(const Starred<G>& function) {
  if constexpr (kFunctionPointer<G>) {
    return encode_task(function.function);
  } else {
    return encode_one(function);
  }
}

// The task function rebuilt on the rank that runs it.
template <class F>
class DecodedTask {
 public:
  DecodedTask(const std::byte* data, std::size_t size) : decoded_(data, size) {}
  F& get() { return decoded_.get(); }

 private:
  DecodedFunction<F> decoded_;
};
template <class F>
requires kFunctionPointer<F>
class DecodedTask<F> {
 public:
  DecodedTask(const std::byte* data, std::size_t size)
      : function_(reinterpret_cast<F>(const_cast<void*>(decode_code_address(data, size)))) {}
  F& get() { return function_; }

 private:
  F function_;
};
template <class G>
requires kFunctionPointer<G>
class DecodedTask<Starred<G>> {
 public:
  DecodedTask(const std::byte* data, std::size_t size)
      : function_{reinterpret_cast<G>(const_cast<void*>(decode_code_address(data, size)))} {}
  Starred<G>& get() { return function_; }

 private:
  Starred<G> function_;
};

// One chunk as a runner sees it.
struct MpiChunkInput {
  std::int64_t first_item = 0;       // index of the chunk's first item in the call's inputs
  std::uint64_t count = 0;           // items in the chunk
  std::int64_t range_first = 0;      // pool::range inputs: the value of the first item
  const std::byte* items = nullptr;  // other inputs: the encoded items
  std::size_t items_size = 0;
};

// When a traced chunk's tasks ran, on the running rank's CLOCK_MONOTONIC; 0: not reached.
struct MpiRunTimes {
  std::int64_t begin_ns = 0;  // its first task began (its items already decoded)
  std::int64_t end_ns = 0;    // its last task ended (its results not yet encoded)
};

// Runs the chunks of one call; built once per call and rank from the call's encoded state.
class MpiRunner {
 public:
  virtual ~MpiRunner() = default;
  // Appends the chunk's results (or its folded value) to `out`. `item` follows the item being
  // run, so that a throw names its task.
  virtual void run(const MpiChunkInput& chunk, std::string& out, std::int64_t& item) = 0;
  // The same, traced: decodes every item before the first task and encodes the results after the
  // last, as a ProcessPool's traced worker does, so that both show as overhead in `times`.
  virtual void run_traced(const MpiChunkInput& chunk, std::string& out, std::int64_t& item,
                          MpiRunTimes& times) = 0;
};

using MakeMpiRunner = std::unique_ptr<MpiRunner> (*)(const std::byte* state, std::size_t size);

// Registers `make` under a hash of the runner's type name; never returns 0.
std::uint64_t register_mpi_runner(const char* type_name, MakeMpiRunner make);
// The runner registered under `id`; throws std::logic_error saying why there is none.
MakeMpiRunner find_mpi_runner(std::uint64_t id);

// One call's runner on a rank, or why there is none: then every chunk of the call fails with
// that reason, on whichever rank runs it.
class MpiCall {
 public:
  MpiCall(std::uint64_t runner, const std::byte* state, std::size_t size);
  // Runs one chunk, appending its results to `out`; the failure, when a task threw.
  std::optional<TaskFailure> run(const MpiChunkInput& chunk, std::string& out);
  // The same, traced: `times` says when its tasks ran; a task that threw ended the run.
  std::optional<TaskFailure> run(const MpiChunkInput& chunk, std::string& out, MpiRunTimes& times);

 private:
  std::unique_ptr<MpiRunner> runner_;
  std::string error_;
};

template <class Runner>
struct MpiRunnerRegistration {
  static std::unique_ptr<MpiRunner> make(const std::byte* state, std::size_t size) {
    return std::make_unique<Runner>(state, size);
  }
  // A static member of a class template: initialized before main on every rank once any rank's
  // code can use it, which is what lets a rank that never calls the pool run its tasks.
  static inline const std::uint64_t id = register_mpi_runner(typeid(Runner).name(), &make);
};

template <class Runner>
std::uint64_t mpi_runner_id() {
  const std::uint64_t id = MpiRunnerRegistration<Runner>::id;
  if (id == 0) {
    throw std::logic_error(
        "pool::MpiPool: a task type was used before static initialization finished; create the "
        "pool inside main");
  }
  find_mpi_runner(id);  // throws if two task types share a name
  return id;
}

// Several encoded values in one string, each as its byte length and its bytes.
class StatePacker {
 public:
  template <class T>
  StatePacker& add(const T& value) {
    return add_encoded(encode_one(value));
  }
  StatePacker& add_encoded(const std::string& bytes) {
    const std::uint64_t size = bytes.size();
    out_.append(reinterpret_cast<const char*>(&size), sizeof size);
    out_ += bytes;
    return *this;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class StateReader {
 public:
  StateReader(const std::byte* data, std::size_t size) : data_(data), size_(size) {}
  // The next value's bytes.
  std::pair<const std::byte*, std::size_t> next() {
    std::uint64_t size = 0;
    if (offset_ + sizeof size > size_) throw std::runtime_error("pool::MpiPool: truncated state");
    std::memcpy(&size, data_ + offset_, sizeof size);
    offset_ += sizeof size;
    if (offset_ + size > size_) throw std::runtime_error("pool::MpiPool: truncated state");
    const std::byte* at = data_ + offset_;
    offset_ += size;
    return {at, static_cast<std::size_t>(size)};
  }

 private:
  const std::byte* data_;
  std::size_t size_;
  std::size_t offset_ = 0;
};

// Calls each(item) on every item of the chunk, in order. kTraced: the items are decoded first and
// times.begin_ns is set when the first task begins.
template <class Item, bool kLazyRange, bool kTraced = false, class Each>
void for_each_chunk_item(const MpiChunkInput& chunk, std::int64_t& index, MpiRunTimes* times,
                         Each&& each) {
  if constexpr (kLazyRange) {
    if constexpr (kTraced) times->begin_ns = monotonic_now_ns();
    for (std::uint64_t i = 0; i < chunk.count; ++i) {
      index = chunk.first_item + static_cast<std::int64_t>(i);
      // Unsigned: the sum wraps like the range's own iterator, never overflows a signed type.
      Item item = static_cast<Item>(static_cast<std::uint64_t>(chunk.range_first) + i);
      each(item);
    }
  } else if constexpr (kTraced) {
    struct Decoded {
      Item value;  // not vector<bool>'s proxies
    };
    std::vector<Decoded> items;
    items.reserve(static_cast<std::size_t>(chunk.count));
    Decoder<Item> decode(chunk.items, chunk.items_size);
    for (std::uint64_t i = 0; i < chunk.count; ++i) items.push_back(Decoded{decode.next()});
    times->begin_ns = monotonic_now_ns();
    for (std::uint64_t i = 0; i < chunk.count; ++i) {
      index = chunk.first_item + static_cast<std::int64_t>(i);
      each(items[static_cast<std::size_t>(i)].value);
    }
  } else {
    Decoder<Item> items(chunk.items, chunk.items_size);
    for (std::uint64_t i = 0; i < chunk.count; ++i) {
      index = chunk.first_item + static_cast<std::int64_t>(i);
      Item item = items.next();
      each(item);
    }
  }
}

// A runner whose Derived::run_as<kTraced>(chunk, out, index, times) does both kinds of run.
template <class Derived>
class MpiRunnerOf : public MpiRunner {
 public:
  void run(const MpiChunkInput& chunk, std::string& out, std::int64_t& index) override {
    static_cast<Derived*>(this)->template run_as<false>(chunk, out, index, nullptr);
  }
  void run_traced(const MpiChunkInput& chunk, std::string& out, std::int64_t& index,
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
  void run_as(const MpiChunkInput& chunk, std::string& out, std::int64_t& index,
              MpiRunTimes* times) {
    F& function = function_.get();
    if constexpr (kRawBytes<Result>) {
      const std::size_t base = out.size();
      out.resize(base + chunk.count * sizeof(Result));
      char* slot = out.data() + base;
      for_each_chunk_item<Item, kLazyRange, kTraced>(chunk, index, times, [&](Item& item) {
        const Result result = function(item);
        std::memcpy(slot, &result, sizeof(Result));
        slot += sizeof(Result);
      });
      if constexpr (kTraced) times->end_ns = monotonic_now_ns();
    } else if constexpr (kTraced) {
      std::vector<Result> kept;
      kept.reserve(static_cast<std::size_t>(chunk.count));
      for_each_chunk_item<Item, kLazyRange, true>(
          chunk, index, times, [&](Item& item) { kept.push_back(function(item)); });
      times->end_ns = monotonic_now_ns();
      Encoder<Result> encode(out);
      for (const Result& result : kept) encode(result);
    } else {
      Encoder<Result> encode(out);
      for_each_chunk_item<Item, kLazyRange>(chunk, index, nullptr,
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
  void run_as(const MpiChunkInput& chunk, std::string& out, std::int64_t& index,
              MpiRunTimes* times) {
    F& function = function_.get();
    Op& op = op_.get();
    T value = init_.get();
    for_each_chunk_item<Item, kLazyRange, kTraced>(
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

#endif  // POOL_DETAIL_MPI_RUNNER_H_
