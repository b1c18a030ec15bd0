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

#include "pool/async_result.h"
#include "pool/detail/serialization.h"
#include "pool/detail/wait_hook.h"
#include "pool/progress_bar.h"
#include "pool/result_stream.h"
#include "pool/shared_array.h"

namespace pool::detail {

// A thread's items not yet added to its call's counter. One shared counter bumped by every item
// would bounce its cache line between workers (a 2 x 10^8-term map_reduce ran 10 times slower):
// items are added in batches that grow while they come faster than one flush per 10 ms.
class ItemTally {
 public:
  void add(std::uint64_t call, std::uint64_t* cell) {
    if (call != call_) {  // a new call: what is pending belongs to one that may be gone
      call_ = call;
      pending_ = 0;
      batch_ = 1;
      flushed_at_ = Clock::now();
    }
    if (++pending_ < batch_) return;
    std::atomic_ref<std::uint64_t>(*cell).fetch_add(pending_, std::memory_order_relaxed);
    pending_ = 0;
    const Clock::time_point now = Clock::now();
    const Clock::duration since = now - std::exchange(flushed_at_, now);
    if (since < std::chrono::milliseconds(10) && batch_ < (1u << 16)) {
      batch_ *= 2;
    } else if (since > std::chrono::milliseconds(100) && batch_ > 1) {
      batch_ /= 2;
    }
  }

 private:
  std::uint64_t call_ = 0;
  std::uint64_t pending_ = 0;
  std::uint64_t batch_ = 1;
  Clock::time_point flushed_at_;
};

inline void count_item(std::uint64_t call, std::uint64_t* cell) {
  thread_local ItemTally tally;
  tally.add(call, cell);
}

// f, counting the items it ran. Fn may be a reference (thread pools use f in place).
template <class Fn>
struct Counted {
  Fn function;
  SharedSpan<std::uint64_t> done;
  std::uint64_t call = 0;  // tells calls apart in a worker that serves several

  template <class... A>
  decltype(auto) operator()(A&&... args) {
    Bump bump{call, done.data()};
    return std::invoke(function, std::forward<A>(args)...);
  }
  template <class... A>
  decltype(auto) operator()(A&&... args) const {
    Bump bump{call, done.data()};
    return std::invoke(function, std::forward<A>(args)...);
  }

  // Only for a function that is itself serializable (it then travels by cereal, not as bytes).
  template <class Archive>
  requires kCerealSerializable<std::remove_cvref_t<Fn>>
  void serialize(Archive& archive) {
    archive(function, cereal::binary_data(&done, sizeof(done)), call);
  }

 private:
  struct Bump {
    std::uint64_t call;
    std::uint64_t* cell;
    ~Bump() { count_item(call, cell); }
  };
};

// One call's counter and bar; redraws the bar whenever its caller waits inside the pool.
class ProgressSession final : public WaitHook {
 public:
  ProgressSession(std::optional<std::uint64_t> total, std::string description)
      : counter_(1), cell_(counter_.data()), bar_(total, options(std::move(description))) {}

  // f as the call's task function: it counts its items into this session. Fn may be a reference.
  template <class Fn>
  Counted<Fn> counted(Fn&& f) const {
    return Counted<Fn>{std::forward<Fn>(f), counter_.span(), call_};
  }
  std::uint64_t done() const {
    return std::atomic_ref<std::uint64_t>(*cell_).load(std::memory_order_relaxed);
  }
  void on_wait() override { bar_.update(done()); }
  // `items` is the exact count when the caller knows it (tasks flush their counts in batches).
  void finish(std::optional<std::uint64_t> items = std::nullopt) {
    bar_.update(items.value_or(done()));
    bar_.finish();
  }

 private:
  static ProgressBar::Options options(std::string description) {
    ProgressBar::Options options;
    options.description = std::move(description);
    return options;
  }

  static std::uint64_t next_call() {
    static std::atomic<std::uint64_t> calls{0};
    return ++calls;
  }

  SharedArray<std::uint64_t> counter_;
  std::uint64_t* cell_;
  std::uint64_t call_ = next_call();  // unique within this process, where every call starts
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

// body(session) runs the call with session.counted(f) as its task function; the bar is drawn
// meanwhile.
template <class Body>
auto run_with_progress(std::optional<std::uint64_t> total, const char* description, Body&& body) {
  ProgressSession session(total, description);
  ScopedWaitHook hook(&session);
  auto result = std::forward<Body>(body)(std::as_const(session));
  session.finish(total);  // it succeeded: every item ran
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
    const std::size_t before = out.size();
    const bool more = inner_->next_batch(out);
    yielded_ += out.size() - before;
    if (more) {
      session_->on_wait();
    } else {
      session_->finish(yielded_);
    }
    return more;
  }

 private:
  std::uint64_t yielded_ = 0;
  std::unique_ptr<ProgressSession> session_;  // outlives inner_, which may wait for tasks
  std::unique_ptr<StreamSource<T>> inner_;
};

// make_stream(session) builds the stream over session.counted(f), as run_with_progress.
template <class MakeStream>
auto stream_with_progress(std::optional<std::uint64_t> total, const char* description,
                          MakeStream&& make_stream) {
  auto session = std::make_unique<ProgressSession>(total, description);
  auto stream = std::forward<MakeStream>(make_stream)(std::as_const(*session));
  using T = typename decltype(stream)::value_type;
  return ResultStream<T>(
      std::make_unique<ProgressSource<T>>(std::move(session), std::move(stream)));
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROGRESS_CALLS_H_
