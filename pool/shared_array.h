// pool::SharedArray<T>: an array that every worker can read and write by index, on any pool;
// Python's multiprocessing.Array or shared_memory.SharedMemory with a NumPy view.
//
//   pool::SharedArray<double> out(n);            // zero-filled, in shared memory
//   workers.map([out = out.span()](std::int64_t i) { out[i] = std::sqrt(i); return 0; },
//               pool::range(0, n));
//   double last = out[n - 1];                     // the workers' writes, no copy
//
// Contract
// - SharedArray owns the memory (move-only); SharedSpan is a trivially copyable handle to it, or to
//   part of it, that a task captures by value. It may be created at any time, also after a
//   ProcessPool forked its workers: a worker maps it the first time it calls data() or [] on a
//   span, so in a hot loop take `T* p = span.data();` once per task.
// - No lock: tasks should write disjoint elements (or use std::atomic_ref on an element).
// - The memory is a memfd: it has no name in /dev/shm, only processes of the same user can open
//   it, and it is freed when the SharedArray is destroyed and every worker has gone idle once
//   more; nothing can be left behind even if every process is killed. It does not count against
//   the size of /dev/shm (64 MiB in some containers).
// - A span outlived by its SharedArray dangles in the creating process, as a std::span would; in
//   a worker process that had not mapped the array yet, using it throws std::runtime_error, which
//   fails the task.
// - Thread pools share the caller's memory: there a span is a plain pointer and its size.
#ifndef POOL_SHARED_ARRAY_H_
#define POOL_SHARED_ARRAY_H_

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "pool/detail/shared_block.h"

namespace pool {

template <class T>
concept SharedElement =
    std::is_trivially_copyable_v<T> && !std::is_const_v<T> && alignof(T) <= detail::kBlockAlignment;

template <SharedElement T>
class SharedArray;

// A view of a SharedArray's elements, valid in the process that created the array and in every
// worker of any pool.
template <SharedElement T>
class SharedSpan {
 public:
  using element_type = T;
  using value_type = T;
  using size_type = std::size_t;
  using iterator = T*;

  SharedSpan() = default;

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // The first element in this process; maps the array on the first call in a worker process.
  T* data() const {
    if (resolved_pid_ != detail::current_pid()) [[unlikely]] {
      resolved_ = reinterpret_cast<T*>(detail::attach(block_)) + offset_;
      resolved_pid_ = detail::current_pid();
    }
    return resolved_;
  }
  T& operator[](std::size_t i) const { return data()[i]; }
  T* begin() const { return data(); }
  T* end() const { return data() + size_; }
  operator std::span<T>() const { return {data(), size_}; }

  // The elements [offset, offset + count); count defaults to the rest.
  SharedSpan subspan(std::size_t offset, std::size_t count = static_cast<std::size_t>(-1)) const {
    if (offset > size_) throw std::out_of_range("pool::SharedSpan::subspan: offset past the end");
    SharedSpan part = *this;
    part.offset_ += offset;
    part.size_ = std::min(count, size_ - offset);
    if (resolved_ != nullptr) part.resolved_ = resolved_ + offset;
    return part;
  }

 private:
  friend class SharedArray<T>;

  detail::SharedBlockRef block_;
  std::size_t offset_ = 0;
  std::size_t size_ = 0;
  // data() in the process that last resolved it; a copy received by a worker resolves again.
  mutable T* resolved_ = nullptr;
  mutable pid_t resolved_pid_ = 0;
};

template <SharedElement T>
class SharedArray {
 public:
  using value_type = T;
  using size_type = std::size_t;
  using iterator = T*;
  using const_iterator = const T*;

  SharedArray() = default;
  // size elements, zero-filled. Throws std::system_error if the memory cannot be had.
  explicit SharedArray(std::size_t size) : block_(bytes_for(size)), size_(size) {}
  SharedArray(std::size_t size, const T& value) : SharedArray(size) {
    std::uninitialized_fill_n(data(), size, value);
  }
  SharedArray(std::initializer_list<T> values) : SharedArray(values.size()) {
    std::uninitialized_copy(values.begin(), values.end(), data());
  }
  SharedArray(SharedArray&& other) noexcept
      : block_(std::move(other.block_)), size_(std::exchange(other.size_, 0)) {}
  SharedArray& operator=(SharedArray&& other) noexcept {
    block_ = std::move(other.block_);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* data() { return reinterpret_cast<T*>(block_.data()); }
  const T* data() const { return reinterpret_cast<const T*>(block_.data()); }
  T& operator[](std::size_t i) { return data()[i]; }
  const T& operator[](std::size_t i) const { return data()[i]; }
  T* begin() { return data(); }
  T* end() { return data() + size_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size_; }
  operator std::span<T>() { return {data(), size_}; }
  operator std::span<const T>() const { return {data(), size_}; }

  // The handle tasks capture; valid while this array lives.
  SharedSpan<T> span() const {
    SharedSpan<T> view;
    view.block_ = block_.ref();
    view.size_ = size_;
    view.resolved_ = const_cast<T*>(data());
    view.resolved_pid_ = detail::current_pid();
    return view;
  }

 private:
  static std::size_t bytes_for(std::size_t size) {
    if (size > static_cast<std::size_t>(-1) / 2 / sizeof(T)) {
      throw std::length_error("pool::SharedArray: " + std::to_string(size) +
                              " elements do not fit in memory");
    }
    return size * sizeof(T);
  }

  detail::OwnedSharedBlock block_;
  std::size_t size_ = 0;
};

}  // namespace pool

#endif  // POOL_SHARED_ARRAY_H_
