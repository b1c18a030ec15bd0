// Readable names for exceptions, for the places that report one instead of rethrowing it: a task's
// failure travelling to the caller, a callback's exception that is logged and ignored.
#ifndef POOL_DETAIL_EXCEPTION_TEXT_H_
#define POOL_DETAIL_EXCEPTION_TEXT_H_

#include <exception>
#include <string>

namespace pool::detail {

// "std::runtime_error" for typeid(std::runtime_error).name().
std::string demangle(const char* mangled);

struct ExceptionText {
  std::string type;     // the demangled dynamic type, e.g. "std::out_of_range", "int"
  std::string message;  // what(), or "(not derived from std::exception)"
};

// Also for exceptions not derived from std::exception. Never throws for a non-null `error`.
ExceptionText describe_exception(const std::exception_ptr& error);

}  // namespace pool::detail

#endif  // POOL_DETAIL_EXCEPTION_TEXT_H_
