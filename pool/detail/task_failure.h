// An exception thrown by task code, captured where it was thrown (a worker process or thread) in a
// form that can travel (cereal) and become a pool::TaskError where the call was made.
#ifndef POOL_DETAIL_TASK_FAILURE_H_
#define POOL_DETAIL_TASK_FAILURE_H_

#include <cstdint>
#include <exception>
#include <string>

#include "pool/errors.h"

namespace pool::detail {

struct TaskFailure {
  std::int64_t index = 0;
  std::string type;
  std::string message;

  // Names the exception's dynamic type, also for types not derived from std::exception.
  static TaskFailure capture(std::int64_t index, std::exception_ptr error);
  TaskError to_error() const { return TaskError(index, type, message); }

  template <class Archive>
  void serialize(Archive& archive) {
    archive(index, type, message);
  }
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_TASK_FAILURE_H_
