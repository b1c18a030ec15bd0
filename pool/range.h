// pool::range(first, last): a lazy half-open integer range, like Python's range(first, last).
//
// It is a sized random-access range, so it works with every pool's map and with standard
// algorithms. A pool sends a chunk of it to a worker as its two bounds; the items are never
// materialized in a list. Cheap to copy; immutable; safe to share between threads. A range holds
// at most PTRDIFF_MAX items, so that its iterators can measure it: a longer one is rejected when
// it is made (std::length_error).
#ifndef POOL_RANGE_H_
#define POOL_RANGE_H_

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>
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
    Int operator[](difference_type n) const { return advanced(value_, n); }
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
      value_ = advanced(value_, n);
      return *this;
    }
    iterator& operator-=(difference_type n) {
      value_ = static_cast<Int>(static_cast<Unsigned>(value_) - static_cast<Unsigned>(n));
      return *this;
    }
    friend iterator operator+(iterator it, difference_type n) { return it += n; }
    friend iterator operator+(difference_type n, iterator it) { return it += n; }
    friend iterator operator-(iterator it, difference_type n) { return it -= n; }
    friend difference_type operator-(iterator a, iterator b) { return a.minus(b); }
    friend bool operator==(iterator a, iterator b) { return a.value_ == b.value_; }
    friend bool operator!=(iterator a, iterator b) { return a.value_ != b.value_; }
    friend bool operator<(iterator a, iterator b) { return a.value_ < b.value_; }
    friend bool operator>(iterator a, iterator b) { return a.value_ > b.value_; }
    friend bool operator<=(iterator a, iterator b) { return a.value_ <= b.value_; }
    friend bool operator>=(iterator a, iterator b) { return a.value_ >= b.value_; }

   private:
    difference_type minus(iterator b) const {
      return static_cast<difference_type>(distance(b.value_, value_));
    }

    Int value_{};
  };

  // An empty range when last <= first, as in Python. Throws std::length_error naming the bounds
  // when the range has more than PTRDIFF_MAX items, e.g. range(-1L, INT64_MAX).
  constexpr Range(Int first, Int last) : first_(first), last_(last < first ? first : last) {
    if (distance(first_, last_) > kMaxSize) throw_too_long(first_, last_);
  }

  constexpr Int first() const { return first_; }
  constexpr Int last() const { return last_; }
  constexpr std::size_t size() const { return static_cast<std::size_t>(distance(first_, last_)); }
  constexpr bool empty() const { return first_ == last_; }
  constexpr Int operator[](std::size_t i) const {
    return advanced(first_, static_cast<std::ptrdiff_t>(i));
  }
  iterator begin() const { return iterator(first_); }
  iterator end() const { return iterator(last_); }

 private:
  // Lengths and offsets are computed in this unsigned type, where they wrap instead of
  // overflowing: to - from is then exact for every valid range, whatever Int's signedness and
  // width, and a distance or offset within the range converts back without loss.
  using Unsigned = std::make_unsigned_t<std::common_type_t<Int, std::ptrdiff_t>>;
  static constexpr Unsigned kMaxSize = static_cast<Unsigned>(PTRDIFF_MAX);

  static constexpr Unsigned distance(Int from, Int to) {
    return static_cast<Unsigned>(static_cast<Unsigned>(to) - static_cast<Unsigned>(from));
  }
  static constexpr Int advanced(Int value, std::ptrdiff_t n) {
    return static_cast<Int>(static_cast<Unsigned>(value) + static_cast<Unsigned>(n));
  }
  static std::string text(Int value) {
    if constexpr (std::is_signed_v<Int>) {
      return std::to_string(static_cast<long long>(value));
    } else {
      return std::to_string(static_cast<unsigned long long>(value));
    }
  }
  [[noreturn]] static void throw_too_long(Int first, Int last) {
    throw std::length_error("pool::range(" + text(first) + ", " + text(last) + ") has " +
                            std::to_string(static_cast<unsigned long long>(distance(first, last))) +
                            " items, more than a range can hold (PTRDIFF_MAX, " +
                            std::to_string(PTRDIFF_MAX) + ")");
  }

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

// Whether T is a pool::Range: pools send its bounds, never its items.
template <class T>
struct is_pool_range : std::false_type {};
template <class Int>
struct is_pool_range<Range<Int>> : std::true_type {};

}  // namespace pool

#endif  // POOL_RANGE_H_
