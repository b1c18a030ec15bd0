// A stream's input (imap, imap_unordered, map_reduce), read batch by batch in the reader's
// thread, the same for every backend.
#ifndef POOL_DETAIL_STREAM_INPUT_H_
#define POOL_DETAIL_STREAM_INPUT_H_

#include <algorithm>
#include <cstddef>
#include <exception>
#include <iterator>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

namespace pool::detail {

// Stored is `Range&` (the caller's range, used in place) or an owned Range (moved into the
// stream). A sized random-access range (a vector, a pool::range) is indexed where it lies (a batch
// is an interval of it); any other range is walked by the reader, which copies each batch's items
// (moves them out of an owned range), so workers never run the range's iterators.
template <class Range, bool kIndexed>
struct IndexBase {
  using type = std::nullptr_t;
};
template <class Range>
struct IndexBase<Range, true> {
  using type = std::ranges::iterator_t<const Range>;
};

template <class Stored>
class StreamInput {
  using Range = std::remove_reference_t<Stored>;
  static constexpr bool kIndexed =
      std::ranges::random_access_range<const Range> && std::ranges::sized_range<const Range>;
  static constexpr bool kOwned = !std::is_lvalue_reference_v<Stored>;

 public:
  using Item = std::ranges::range_value_t<Range>;

  struct InputBatch {
    std::size_t first = 0;  // input index of the batch's first item
    std::size_t count = 0;
    std::vector<Item> copies;  // unless indexed
  };

  explicit StreamInput(Stored range) : range_(std::forward<Stored>(range)) {
    if constexpr (kIndexed) {
      base_ = std::ranges::begin(std::as_const(range_));
      size_ = static_cast<std::size_t>(std::ranges::size(std::as_const(range_)));
    }
  }
  StreamInput(const StreamInput&) = delete;  // base_ may point into range_
  StreamInput& operator=(const StreamInput&) = delete;

  // Up to `max` next items, none at the end. An exception from the range's iterator ends the input
  // and lands in `error`; as Python's imap, the chunk (of `chunksize` items) the failing item
  // belongs to yields nothing, so the batch keeps only the whole chunks read before it.
  InputBatch next_batch(std::size_t max, std::size_t chunksize, std::exception_ptr& error) {
    InputBatch batch;
    batch.first = next_;
    if constexpr (kIndexed) {
      batch.count = std::min(max, size_ - next_);
    } else {
      try {
        if (!it_) it_.emplace(std::ranges::begin(range_));
        auto& it = *it_;
        while (batch.copies.size() < max && it != std::ranges::end(range_)) {
          if constexpr (kOwned) {
            batch.copies.push_back(std::ranges::iter_move(it));
          } else {
            batch.copies.push_back(*it);
          }
          ++it;
        }
      } catch (...) {
        error = std::current_exception();
        batch.copies.resize(batch.copies.size() - batch.copies.size() % chunksize);
      }
      batch.count = batch.copies.size();
    }
    next_ += batch.count;
    return batch;
  }

  // An iterator to the batch's first item.
  auto begin_of(InputBatch& batch) const {
    if constexpr (kIndexed) {
      return base_ + static_cast<std::ptrdiff_t>(batch.first);
    } else {
      return batch.copies.begin();
    }
  }

  // Item k of a batch: a reference to the stream's copy, or what the range's iterator yields.
  decltype(auto) item(InputBatch& batch, std::size_t k) const {
    if constexpr (kIndexed) {
      return base_[static_cast<std::ptrdiff_t>(batch.first + k)];
    } else {
      return batch.copies[k];
    }
  }

 private:
  Stored range_;
  std::size_t next_ = 0;
  std::size_t size_ = 0;                              // indexed only
  typename IndexBase<Range, kIndexed>::type base_{};  // indexed only
  // Walked only; begin() is taken on the first batch, in the reader's thread.
  std::optional<std::ranges::iterator_t<Range>> it_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_STREAM_INPUT_H_
