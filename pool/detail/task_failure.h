// An exception thrown by task code, captured where it was thrown (a worker process or thread) in a
// form that can travel (cereal) and become a pool::TaskError where the call was made.
#ifndef POOL_DETAIL_TASK_FAILURE_H_
#define POOL_DETAIL_TASK_FAILURE_H_

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "pool/errors.h"

namespace pool::detail {

struct TaskFailure {
  std::int64_t index = 0;
  std::string type;
  std::string message;
  std::string stack;  // where it was thrown, symbolized in the worker; empty when unknown

  // Names the exception's dynamic type, also for types not derived from std::exception.
  static TaskFailure capture(std::int64_t index, std::exception_ptr error);
  TaskError to_error() const { return TaskError(index, type, message, stack); }

  template <class Archive>
  void serialize(Archive& archive) {
    archive(index, type, message, stack);
  }
};

// A map fails with its lowest failing task, whichever finished first: every pool keeps one of
// these per call. Not synchronized.
class LowestFailure {
 public:
  // True when `failure` is now the lowest.
  bool add(TaskFailure failure) {
    if (failure_ && failure_->index <= failure.index) return false;
    failure_ = std::move(failure);
    return true;
  }
  explicit operator bool() const { return failure_.has_value(); }
  std::exception_ptr error() const {
    return failure_ ? std::make_exception_ptr(failure_->to_error()) : nullptr;
  }

 private:
  std::optional<TaskFailure> failure_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_TASK_FAILURE_H_
