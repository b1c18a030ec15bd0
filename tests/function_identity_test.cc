// Function identity: how a task's code is named to a process that is not a fork of the caller. A
// function pointer travels as its module and offset and comes back as the same address; a runner
// type travels as an id that every process registered before main; a call's state packs several
// values that read back in order. Whatever arrives corrupted fails with an exception that says
// what is wrong, never with a crash.
#include "pool/detail/function_identity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>

#include "pool/detail/call_adapters.h"
#include "pool/detail/serialization.h"

namespace {

namespace detail = pool::detail;

int triple(int x) { return 3 * x; }
int add(int a, int b) { return a + b; }

struct Scale {
  int factor = 0;
  int operator()(int x) const { return factor * x; }
};

const std::byte* bytes_of(const std::string& text) {
  return reinterpret_cast<const std::byte*>(text.data());
}

// An encoded code address as it might arrive damaged.
std::string code_address(std::uint64_t offset, const std::string& module) {
  return std::string(reinterpret_cast<const char*>(&offset), sizeof offset) + module;
}

std::uint64_t offset_of(const std::string& encoded) {
  std::uint64_t offset = 0;
  std::memcpy(&offset, encoded.data(), sizeof offset);
  return offset;
}

std::string logic_error_of(const std::string& encoded) {
  try {
    detail::decode_code_address(bytes_of(encoded), encoded.size());
  } catch (const std::logic_error& error) {
    return error.what();
  }
  return "no std::logic_error";
}

// A backend's runner interface, and runners of it built from a state that holds one int.
class TestRunner : public detail::Runner {
 public:
  virtual int value() const = 0;
};

template <int kAdded>
class AddingRunner final : public TestRunner {
 public:
  AddingRunner(const std::byte* state, std::size_t size) {
    detail::StateReader reader(state, size);
    const auto [data, length] = reader.next();
    value_ = detail::DecodedFunction<int>(data, length).get() + kAdded;
  }
  int value() const override { return value_; }

 private:
  int value_ = 0;
};

class OtherBackendRunner : public detail::Runner {};

TEST(FunctionIdentity, FunctionPointerComesBackAsTheSameAddress) {
  const std::string encoded = detail::encode_task(&triple);
  detail::DecodedTask<int (*)(int)> decoded(bytes_of(encoded), encoded.size());
  EXPECT_EQ(decoded.get(), &triple);
  EXPECT_EQ(decoded.get()(5), 15);
}

TEST(FunctionIdentity, SharedLibraryFunctionComesBackAsTheSameAddress) {
  using Cos = double (*)(double);
  const Cos cos = static_cast<Cos>(&std::cos);
  const std::string encoded = detail::encode_task(cos);
  EXPECT_GT(encoded.size(), sizeof(std::uint64_t)) << "the module is named, not the program";
  detail::DecodedTask<Cos> decoded(bytes_of(encoded), encoded.size());
  EXPECT_EQ(decoded.get(), cos);
}

TEST(FunctionIdentity, StarredFunctionPointerTravelsAsItsAddress) {
  using Add = int (*)(int, int);
  const detail::Starred<Add> starred{&add};
  const std::string encoded = detail::encode_task(starred);
  EXPECT_EQ(encoded, detail::encode_task(&add));
  detail::DecodedTask<detail::Starred<Add>> decoded(bytes_of(encoded), encoded.size());
  EXPECT_EQ(decoded.get().function, &add);
}

TEST(FunctionIdentity, FunctionObjectTravelsAsItsValue) {
  const std::string encoded = detail::encode_task(Scale{7});
  detail::DecodedTask<Scale> decoded(bytes_of(encoded), encoded.size());
  EXPECT_EQ(decoded.get()(6), 42);
}

TEST(FunctionIdentity, ModuleNotLoadedThrowsLogicErrorNamingIt) {
  const std::string message = logic_error_of(code_address(16, "/no/such/library.so"));
  EXPECT_NE(message.find("/no/such/library.so"), std::string::npos) << message;
  EXPECT_NE(message.find("not loaded"), std::string::npos) << message;
}

TEST(FunctionIdentity, CorruptedModuleNameThrowsLogicError) {
  const std::uint64_t offset = offset_of(detail::encode_task(&triple));
  // The program's name is "": a name that only starts like it is another module.
  const std::string message = logic_error_of(code_address(offset, std::string("\0junk", 5)));
  EXPECT_NE(message.find("not loaded"), std::string::npos) << message;
}

TEST(FunctionIdentity, OffsetOutsideItsModuleThrowsLogicError) {
  const std::string encoded = detail::encode_task(&triple);
  const std::string module = encoded.substr(sizeof(std::uint64_t));
  for (const std::uint64_t offset : {std::uint64_t{1} << 62, ~std::uint64_t{0}}) {
    const std::string message = logic_error_of(code_address(offset, module));
    EXPECT_NE(message.find("outside"), std::string::npos) << message;
  }
  using Triple = int (*)(int);
  const std::string damaged = code_address(std::uint64_t{1} << 62, module);
  EXPECT_THROW(detail::DecodedTask<Triple>(bytes_of(damaged), damaged.size()), std::logic_error);
}

TEST(FunctionIdentity, TruncatedCodeAddressThrowsRuntimeError) {
  const std::string encoded = detail::encode_task(&triple);
  for (std::size_t size = 0; size < sizeof(std::uint64_t); ++size) {
    EXPECT_THROW(detail::decode_code_address(bytes_of(encoded), size), std::runtime_error);
  }
}

TEST(FunctionIdentity, RegisteredRunnerIsFoundByItsId) {
  const std::uint64_t id = detail::runner_id<AddingRunner<2>>();
  EXPECT_NE(id, 0u);
  EXPECT_NE(detail::find_runner(id), nullptr);
  const std::string state = detail::StatePacker().add(40).take();
  const std::unique_ptr<TestRunner> runner =
      detail::make_runner<TestRunner>(id, bytes_of(state), state.size());
  EXPECT_EQ(runner->value(), 42);
}

TEST(FunctionIdentity, SameRunnerTypeKeepsItsId) {
  EXPECT_EQ(detail::runner_id<AddingRunner<1>>(), detail::runner_id<AddingRunner<1>>());
  EXPECT_EQ(detail::runner_id<AddingRunner<1>>(), detail::RunnerRegistration<AddingRunner<1>>::id);
}

TEST(FunctionIdentity, DifferentRunnerTypesGetDifferentIds) {
  EXPECT_NE(detail::runner_id<AddingRunner<1>>(), detail::runner_id<AddingRunner<2>>());
}

TEST(FunctionIdentity, UnknownIdThrowsLogicErrorNamingTheProblem) {
  for (const std::uint64_t id : {std::uint64_t{0}, std::uint64_t{0x5eed}}) {
    try {
      detail::find_runner(id);
      ADD_FAILURE() << "no exception for id " << id;
    } catch (const std::logic_error& error) {
      EXPECT_NE(std::string(error.what()).find("does not know the task's type"), std::string::npos)
          << error.what();
    }
  }
}

TEST(FunctionIdentity, RunnerOfAnotherInterfaceThrowsLogicError) {
  const std::string state = detail::StatePacker().add(1).take();
  EXPECT_THROW(detail::make_runner<OtherBackendRunner>(detail::runner_id<AddingRunner<1>>(),
                                                       bytes_of(state), state.size()),
               std::logic_error);
}

std::unique_ptr<detail::Runner> make_one(const std::byte* state, std::size_t size) {
  return std::make_unique<AddingRunner<1>>(state, size);
}
std::unique_ptr<detail::Runner> make_other(const std::byte* state, std::size_t size) {
  return std::make_unique<AddingRunner<2>>(state, size);
}

TEST(FunctionIdentity, TwoTypesOfOneNameThrowLogicErrorNamingIt) {
  // As two files' types of one name in anonymous namespaces would register.
  const std::uint64_t id = detail::register_runner("TwoTypesOfOneName", &make_one);
  EXPECT_EQ(detail::register_runner("TwoTypesOfOneName", &make_other), id);
  try {
    detail::find_runner(id);
    ADD_FAILURE() << "no exception";
  } catch (const std::logic_error& error) {
    EXPECT_NE(std::string(error.what()).find("TwoTypesOfOneName"), std::string::npos)
        << error.what();
  }
}

TEST(FunctionIdentity, PackedStateReadsBackInOrder) {
  const std::string state = detail::StatePacker()
                                .add(7)
                                .add(std::string("eight"))
                                .add_encoded(detail::encode_task(&triple))
                                .add(9.5)
                                .take();
  detail::StateReader reader(bytes_of(state), state.size());
  auto [data, size] = reader.next();
  EXPECT_EQ(detail::DecodedFunction<int>(data, size).get(), 7);
  std::tie(data, size) = reader.next();
  EXPECT_EQ(detail::DecodedFunction<std::string>(data, size).get(), "eight");
  std::tie(data, size) = reader.next();
  EXPECT_EQ(detail::DecodedTask<int (*)(int)>(data, size).get(), &triple);
  std::tie(data, size) = reader.next();
  EXPECT_EQ(detail::DecodedFunction<double>(data, size).get(), 9.5);
  EXPECT_THROW(reader.next(), std::runtime_error);
}

TEST(FunctionIdentity, TruncatedStateThrowsRuntimeError) {
  const std::string state = detail::StatePacker().add(7).add(std::string("eight")).take();
  for (std::size_t size = 0; size < state.size(); ++size) {
    detail::StateReader reader(bytes_of(state), size);
    EXPECT_THROW(
        {
          reader.next();
          reader.next();
        },
        std::runtime_error)
        << "cut at " << size;
  }
}

TEST(FunctionIdentity, StateWithAnImpossibleLengthThrowsRuntimeError) {
  const std::uint64_t length = ~std::uint64_t{0};  // past any buffer, and wraps an offset
  const std::string state =
      std::string(reinterpret_cast<const char*>(&length), sizeof length) + "x";
  detail::StateReader reader(bytes_of(state), state.size());
  EXPECT_THROW(reader.next(), std::runtime_error);
}

}  // namespace
