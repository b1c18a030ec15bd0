// Function identity: how a call names its code to a process that is not a fork of the caller (an
// MPI rank; a spawned or forkserver worker). Such a process runs the same executable, but at other
// addresses (ASLR), so code never travels as a pointer:
// - a task function (or op) that is a function pointer travels as its module and offset and is
//   relocated on arrival; any other function object travels as its encoded value (trivially
//   copyable or cereal-serializable): encode_task on the sending side, DecodedTask on the other;
// - the code that runs a call (a Runner: the template instance for the call's task type) travels
//   as an id, a hash of its type's name. Every process registers every Runner type its program
//   instantiates before main, so a process that never submits a call runs one it is sent;
// - the call's state (task function, op, init) is packed into one string by StatePacker and read
//   back, in the same order, by StateReader.
// Every process must run the same program: a module that is not loaded, an id nobody registered,
// are errors, not guesses.
//
// Errors: an address or state cut short throws std::runtime_error; a module not loaded here, an
// address outside its module, an unknown id, two Runner types of one name, a runner of another
// backend's interface throw std::logic_error. Decoding an address or reading a state never reads
// past its bytes, and a decoded address always lies inside its module.
// Thread safety: the registry is guarded by a mutex; the rest holds no shared state.
// Cost: encoding or decoding an address walks the loaded modules (dl_iterate_phdr), once per call.
#ifndef POOL_DETAIL_FUNCTION_IDENTITY_H_
#define POOL_DETAIL_FUNCTION_IDENTITY_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "pool/detail/call_adapters.h"
#include "pool/detail/serialization.h"
#include "pool/retry.h"

namespace pool::detail {

// A plain function pointer: it travels as a code address, never as its bytes.
template <class F>
inline constexpr bool kFunctionPointer =
    std::is_pointer_v<F>&& std::is_function_v<std::remove_pointer_t<F>>;

// A function pointer, or an adapter the front end wraps around one (Starred, Retrying): these
// travel as the pointer's code address (and the adapter's own fields).
template <class F>
struct CarriesCodeAddress : std::bool_constant<kFunctionPointer<F>> {};
template <class G, bool kMove>
struct CarriesCodeAddress<Starred<G, kMove>> : CarriesCodeAddress<G> {};
template <class G>
struct CarriesCodeAddress<Retrying<G>> : CarriesCodeAddress<G> {};
template <class F>
inline constexpr bool kCarriesCodeAddress = CarriesCodeAddress<F>::value;

// Code addresses as their module (as the dynamic linker names it, "" for the program) and the
// offset from its load address: the same in every process that runs the same files.
std::string encode_code_address(const void* address);
const void* decode_code_address(const std::byte* data, std::size_t size);

// A task function (or op) as it travels to another process.
template <class F>
std::string encode_task(const F& function) {
  if constexpr (kFunctionPointer<F>) {
    return encode_code_address(reinterpret_cast<const void*>(function));
  } else {
    return encode_one(function);
  }
}
template <class G, bool kMove>
std::string encode_task(const Starred<G, kMove>& function) {
  if constexpr (kCarriesCodeAddress<G>) {
    return encode_task(function.function);
  } else {
    return encode_one(function);
  }
}
// pool::retrying of a function pointer: its policy, then the pointer's address.
template <class G>
std::string encode_task(const Retrying<G>& function) {
  if constexpr (kCarriesCodeAddress<G>) {
    const std::int32_t policy[2] = {function.times, static_cast<std::int32_t>(function.on)};
    std::string encoded(reinterpret_cast<const char*>(policy), sizeof policy);
    return encoded + encode_task(function.function);
  } else {
    return encode_one(function);
  }
}

// The task function rebuilt in the process that runs it.
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
template <class G, bool kMove>
requires kCarriesCodeAddress<G>
class DecodedTask<Starred<G, kMove>> {
 public:
  DecodedTask(const std::byte* data, std::size_t size)
      : function_{DecodedTask<G>(data, size).get()} {}
  Starred<G, kMove>& get() { return function_; }

 private:
  Starred<G, kMove> function_;
};
template <class G>
requires kCarriesCodeAddress<G>
class DecodedTask<Retrying<G>> {
 public:
  DecodedTask(const std::byte* data, std::size_t size) : function_(decode(data, size)) {}
  Retrying<G>& get() { return function_; }

 private:
  static Retrying<G> decode(const std::byte* data, std::size_t size) {
    std::int32_t policy[2];
    if (size < sizeof policy) throw std::runtime_error("pool: a retried task's state is cut short");
    std::memcpy(policy, data, sizeof policy);
    return {DecodedTask<G>(data + sizeof policy, size - sizeof policy).get(), policy[0],
            static_cast<RetryOn>(policy[1])};
  }
  Retrying<G> function_;
};

// The code of one kind of call, built in the process that runs it from the call's state. Each
// backend derives its own runner interface from it (MpiRunner); a concrete runner is constructible
// from (const std::byte* state, std::size_t size).
class Runner {
 public:
  virtual ~Runner() = default;
};

using MakeRunner = std::unique_ptr<Runner> (*)(const std::byte* state, std::size_t size);

// Registers `make` under a hash of the runner's type name; never returns 0.
std::uint64_t register_runner(const char* type_name, MakeRunner make);
// The runner registered under `id`; throws std::logic_error saying why there is none.
MakeRunner find_runner(std::uint64_t id);

template <class R>
struct RunnerRegistration {
  static_assert(std::is_base_of_v<Runner, R> &&
                    std::is_constructible_v<R, const std::byte*, std::size_t>,
                "a runner derives from detail::Runner and is built from (state, size)");
  static std::unique_ptr<Runner> make(const std::byte* state, std::size_t size) {
    return std::make_unique<R>(state, size);
  }
  // A static member of a class template: initialized before main in every process once any
  // process's code can use it, which is what lets a process that never submits a call run it.
  static inline const std::uint64_t id = register_runner(typeid(R).name(), &make);
};

// The id under which R travels; throws std::logic_error before static initialization is over or
// when two types share R's name.
template <class R>
std::uint64_t runner_id() {
  const std::uint64_t id = RunnerRegistration<R>::id;
  if (id == 0) {
    throw std::logic_error(
        "pool: a task type was used before static initialization finished; create the pool "
        "inside main");
  }
  find_runner(id);  // throws if two task types share a name
  return id;
}

[[noreturn]] void throw_not_runner_of(const Runner& runner, const std::type_info& interface);

// The runner registered under `id`, built from `state`, as the backend's `Interface`; throws
// std::logic_error when there is none or it is another backend's.
template <class Interface>
std::unique_ptr<Interface> make_runner(std::uint64_t id, const std::byte* state, std::size_t size) {
  std::unique_ptr<Runner> runner = find_runner(id)(state, size);
  auto* typed = dynamic_cast<Interface*>(runner.get());
  if (typed == nullptr) throw_not_runner_of(*runner, typeid(Interface));
  runner.release();
  return std::unique_ptr<Interface>(typed);
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

// Reads a StatePacker's values back, in the order they were added.
class StateReader {
 public:
  StateReader(const std::byte* data, std::size_t size) : data_(data), size_(size) {}
  // The next value's bytes; throws std::runtime_error when the state ends first.
  std::pair<const std::byte*, std::size_t> next() {
    std::uint64_t size = 0;
    if (size_ - offset_ < sizeof size) throw std::runtime_error("pool: truncated task state");
    std::memcpy(&size, data_ + offset_, sizeof size);
    offset_ += sizeof size;
    if (size_ - offset_ < size) throw std::runtime_error("pool: truncated task state");
    const std::byte* at = data_ + offset_;
    offset_ += size;
    return {at, static_cast<std::size_t>(size)};
  }

 private:
  const std::byte* data_;
  std::size_t size_;
  std::size_t offset_ = 0;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_FUNCTION_IDENTITY_H_
