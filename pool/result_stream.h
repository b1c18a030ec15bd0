// pool::ResultStream<T>: what imap and imap_unordered return, a single-pass input range of
// results that arrive while the pool works, as Python's IMapIterator.
//
//   for (double root : workers.imap(slow_sqrt, inputs)) print(root);
//   for (auto [index, root] : workers.imap_unordered(slow_sqrt, inputs)) print(index, root);
//
// Contract
// - Results are produced in bounded batches ahead of the reader, so neither all inputs nor all
//   results are held at once, whatever the input's length.
// - imap yields in input order, each result as soon as it and all before it are ready;
//   imap_unordered yields (index, result) pairs in completion order.
// - A failed task (TaskError) or a dead worker (WorkerDied) is thrown by the iterator when the
//   stream reaches it; every result before it has been yielded. The stream ends after a throw.
// - Destroying a stream before its end cancels the work not yet started and waits for the tasks
//   already running. A stream must not outlive its pool; it is used by one thread at a time.
#ifndef POOL_RESULT_STREAM_H_
#define POOL_RESULT_STREAM_H_

#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace pool {

namespace detail {

// Hands out results batch by batch.
template <class T>
class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // Appends the next ready results to `out` (at least one), waiting if needed; false at the end.
  // Throws the failure met at this point of the stream.
  virtual bool next_batch(std::vector<T>& out) = 0;
};

struct StreamAccess;

}  // namespace detail

template <class T>
class ResultStream {
 public:
  using value_type = T;

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using reference = T&;

    iterator() = default;
    T& operator*() const { return stream_->current(); }
    T* operator->() const { return &stream_->current(); }
    iterator& operator++() {
      stream_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

   private:
    friend class ResultStream;
    explicit iterator(ResultStream* stream) : stream_(stream) {}
    bool at_end() const { return stream_ == nullptr || stream_->at_end(); }
    ResultStream* stream_ = nullptr;
  };

  explicit ResultStream(std::unique_ptr<detail::StreamSource<T>> source)
      : source_(std::move(source)) {}
  ResultStream(ResultStream&&) noexcept = default;
  ResultStream& operator=(ResultStream&&) noexcept = default;

  // Single pass: begin() again continues where the stream is. Results are waited for lazily, when
  // the loop looks at the next one, so a failure surfaces after every result before it was used.
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const { return {}; }

  // The next result, or nothing at the end of the stream.
  std::optional<T> next() {
    if (at_end()) return std::nullopt;
    std::optional<T> value(std::move(buffer_[position_]));
    ++position_;
    return value;
  }

  // Everything that is left, in stream order.
  std::vector<T> collect() {
    std::vector<T> all;
    while (std::optional<T> value = next()) all.push_back(std::move(*value));
    return all;
  }

 private:
  bool at_end() {
    if (position_ >= buffer_.size()) fill();
    return position_ >= buffer_.size();
  }
  T& current() {
    at_end();
    return buffer_[position_];
  }
  void advance() {
    if (position_ < buffer_.size()) ++position_;
  }
  void fill() {
    buffer_.clear();
    position_ = 0;
    if (!source_) return;
    try {
      if (!source_->next_batch(buffer_)) source_.reset();
    } catch (...) {
      source_.reset();  // the stream ends at its failure
      throw;
    }
  }

  friend struct detail::StreamAccess;  // the progress option wraps the source

  std::unique_ptr<detail::StreamSource<T>> source_;
  std::vector<T> buffer_;
  std::size_t position_ = 0;
};

}  // namespace pool

#endif  // POOL_RESULT_STREAM_H_
