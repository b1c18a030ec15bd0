#include "pool/detail/exception_text.h"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <typeinfo>

namespace pool::detail {

std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> readable(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && readable ? std::string(readable.get()) : std::string(mangled);
}

ExceptionText describe_exception(const std::exception_ptr& error) {
  ExceptionText text;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    text.type = demangle(typeid(e).name());
    text.message = e.what();
  } catch (...) {
    const std::type_info* type = abi::__cxa_current_exception_type();
    text.type = type != nullptr ? demangle(type->name()) : "unknown";
    text.message = "(not derived from std::exception)";
  }
  return text;
}

}  // namespace pool::detail
