// pool::range(first, last): a lazy half-open integer range, like Python's range(first, last).
//
// It is a sized random-access range, so it works with every pool's map and with standard
// algorithms. A pool sends a chunk of it to a worker as its two bounds; the items are never
// materialized in a list. Cheap to copy; immutable; safe to share between threads.
#ifndef POOL_RANGE_H_
#define POOL_RANGE_H_

#include <cstddef>
#include <iterator>
#include <stdexcept>
#include <type_traits>

namespace pool {

template <class Int>
class Range {
  static_assert(std::is_integral_v<Int> && !std::is_same_v<Int, bool>,
                "pool::Range holds integers only");

 public:
  using value_type = Int;

  class iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = Int;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Int;

    iterator() = default;
    explicit iterator(Int value) : value_(value) {}
    Int operator*() const { return value_; }
    Int operator[](difference_type n) const { return static_cast<Int>(value_ + n); }
    iterator& operator++() {
      ++value_;
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      ++value_;
      return old;
    }
    iterator& operator--() {
      --value_;
      return *this;
    }
    iterator operator--(int) {
      iterator old = *this;
      --value_;
      return old;
    }
    iterator& operator+=(difference_type n) {
      value_ = static_cast<Int>(value_ + n);
      return *this;
    }
    iterator& operator-=(difference_type n) {
      value_ = static_cast<Int>(value_ - n);
      return *this;
    }
    friend iterator operator+(iterator it, difference_type n) { return it += n; }
    friend iterator operator+(difference_type n, iterator it) { return it += n; }
    friend iterator operator-(iterator it, difference_type n) { return it -= n; }
    friend difference_type operator-(iterator a, iterator b) {
      return static_cast<difference_type>(a.value_) - static_cast<difference_type>(b.value_);
    }
    friend bool operator==(iterator a, iterator b) { return a.value_ == b.value_; }
    friend bool operator!=(iterator a, iterator b) { return a.value_ != b.value_; }
    friend bool operator<(iterator a, iterator b) { return a.value_ < b.value_; }
    friend bool operator>(iterator a, iterator b) { return a.value_ > b.value_; }
    friend bool operator<=(iterator a, iterator b) { return a.value_ <= b.value_; }
    friend bool operator>=(iterator a, iterator b) { return a.value_ >= b.value_; }

   private:
    Int value_{};
  };

  // An empty range when last <= first, as in Python.
  constexpr Range(Int first, Int last) : first_(first), last_(last < first ? first : last) {}

  constexpr Int first() const { return first_; }
  constexpr Int last() const { return last_; }
  constexpr std::size_t size() const { return static_cast<std::size_t>(last_ - first_); }
  constexpr bool empty() const { return first_ == last_; }
  constexpr Int operator[](std::size_t i) const { return static_cast<Int>(first_ + i); }
  iterator begin() const { return iterator(first_); }
  iterator end() const { return iterator(last_); }

 private:
  Int first_;
  Int last_;
};

// range(first, last) over the common type of both bounds, e.g. range(1, n + 1) with n a long.
template <class A, class B>
constexpr auto range(A first, B last) {
  using Int = std::common_type_t<A, B>;
  return Range<Int>(static_cast<Int>(first), static_cast<Int>(last));
}

// range(n) is range(0, n).
template <class Int>
constexpr Range<Int> range(Int n) {
  return Range<Int>(Int{0}, n);
}

template <class T>
struct is_range : std::false_type {};
template <class Int>
struct is_range<Range<Int>> : std::true_type {};

}  // namespace pool

#endif  // POOL_RANGE_H_
