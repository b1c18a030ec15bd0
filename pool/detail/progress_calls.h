// The pools' `progress` option: every task bumps one counter in shared memory (so workers in
// other processes can too) and the caller redraws a ProgressBar from it while it waits.
#ifndef POOL_DETAIL_PROGRESS_CALLS_H_
#define POOL_DETAIL_PROGRESS_CALLS_H_

#include <atomic>
#include <cereal/types/common.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/detail/serialization.h"
#include "pool/detail/wait_hook.h"
#include "pool/progress_bar.h"
#include "pool/result_stream.h"
#include "pool/shared_array.h"

namespace pool::detail {

// f, counting the items it ran. Fn may be a reference (thread pools use f in place).
template <class Fn>
struct Counted {
  Fn function;
  SharedSpan<std::uint64_t> done;

  template <class... A>
  decltype(auto) operator()(A&&... args) {
    Bump bump{done.data()};
    return std::invoke(function, std::forward<A>(args)...);
  }
  template <class... A>
  decltype(auto) operator()(A&&... args) const {
    Bump bump{done.data()};
    return std::invoke(function, std::forward<A>(args)...);
  }

  // Only for a function that is itself serializable (it then travels by cereal, not as bytes).
  template <class Archive>
  requires kCerealSerializable<std::remove_cvref_t<Fn>>
  void serialize(Archive& archive) { archive(function, cereal::binary_data(&done, sizeof(done))); }

 private:
  struct Bump {
    std::uint64_t* cell;
    ~Bump() { std::atomic_ref<std::uint64_t>(*cell).fetch_add(1, std::memory_order_relaxed); }
  };
};

// One call's counter and bar; redraws the bar whenever its caller waits inside the pool.
class ProgressSession final : public WaitHook {
 public:
  ProgressSession(std::optional<std::uint64_t> total, std::string description)
      : counter_(1),
        cell_(counter_.data()),
        bar_(total, options(std::move(description))) {}

  SharedSpan<std::uint64_t> counter() const { return counter_.span(); }
  std::uint64_t done() const {
    return std::atomic_ref<std::uint64_t>(*cell_).load(std::memory_order_relaxed);
  }
  void on_wait() override { bar_.update(done()); }
  void finish() {
    bar_.update(done());
    bar_.finish();
  }

 private:
  static ProgressBar::Options options(std::string description) {
    ProgressBar::Options options;
    options.description = std::move(description);
    return options;
  }

  SharedArray<std::uint64_t> counter_;
  std::uint64_t* cell_;
  ProgressBar bar_;
};

template <class Inputs>
std::optional<std::uint64_t> progress_total(const Inputs& inputs) {
  if constexpr (std::ranges::sized_range<const Inputs>) {
    return static_cast<std::uint64_t>(std::ranges::size(inputs));
  } else {
    return std::nullopt;
  }
}

// body(counter) runs the call with tasks counting into counter; the bar is drawn meanwhile.
template <class Body>
auto run_with_progress(std::optional<std::uint64_t> total, const char* description, Body&& body) {
  ProgressSession session(total, description);
  ScopedWaitHook hook(&session);
  auto result = std::forward<Body>(body)(session.counter());
  session.finish();
  return result;
}

struct StreamAccess {
  template <class T>
  static std::unique_ptr<StreamSource<T>> take(ResultStream<T>&& stream) {
    return std::move(stream.source_);
  }
};

// A stream whose reader redraws the bar while it waits for results.
template <class T>
class ProgressSource final : public StreamSource<T> {
 public:
  ProgressSource(std::unique_ptr<ProgressSession> session, ResultStream<T> inner)
      : session_(std::move(session)), inner_(StreamAccess::take(std::move(inner))) {}

  bool next_batch(std::vector<T>& out) override {
    ScopedWaitHook hook(session_.get());
    const bool more = inner_->next_batch(out);
    if (more) {
      session_->on_wait();
    } else {
      session_->finish();
    }
    return more;
  }

 private:
  std::unique_ptr<ProgressSession> session_;  // outlives inner_, which may wait for tasks
  std::unique_ptr<StreamSource<T>> inner_;
};

// make_stream(counter) builds the stream over the counted function.
template <class MakeStream>
auto stream_with_progress(std::optional<std::uint64_t> total, const char* description,
                          MakeStream&& make_stream) {
  auto session = std::make_unique<ProgressSession>(total, description);
  auto stream = std::forward<MakeStream>(make_stream)(session->counter());
  using T = typename decltype(stream)::value_type;
  return ResultStream<T>(
      std::make_unique<ProgressSource<T>>(std::move(session), std::move(stream)));
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROGRESS_CALLS_H_
