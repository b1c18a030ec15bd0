#include "pool/detail/task_failure.h"

#include <cxxabi.h>

#include <typeinfo>

#include "pool/detail/serialization.h"

namespace pool::detail {

TaskFailure TaskFailure::capture(std::int64_t index, std::exception_ptr error) {
  TaskFailure failure{index, {}, {}};
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    failure.type = demangle(typeid(e).name());
    failure.message = e.what();
  } catch (...) {
    const std::type_info* type = abi::__cxa_current_exception_type();
    failure.type = type != nullptr ? demangle(type->name()) : "unknown";
    failure.message = "(not derived from std::exception)";
  }
  return failure;
}

}  // namespace pool::detail
