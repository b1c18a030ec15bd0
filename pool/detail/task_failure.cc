#include "pool/detail/task_failure.h"

#include "pool/detail/exception_text.h"
#include "pool/detail/throw_site.h"

namespace pool::detail {

TaskFailure TaskFailure::capture(std::int64_t index, std::exception_ptr error) {
  ExceptionText text = describe_exception(error);
  return TaskFailure{index, std::move(text.type), std::move(text.message), throw_site_of(error)};
}

}  // namespace pool::detail
