// The one Boost.Asio io_context of a process pool's parent: it reads the workers' control
// messages, hears SIGCHLD, and catches SIGINT while a caller waits. Handlers run only inside
// poll() and run_one(), on the thread that drives the pool; nothing runs in the background.
//
// Included by the pool's .cc files only, so that users of pool/process_pool.h do not compile
// Asio. Not thread-safe; one per ProcessPoolCore.
#ifndef POOL_DETAIL_PROCESS_EVENT_LOOP_H_
#define POOL_DETAIL_PROCESS_EVENT_LOOP_H_

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "pool/async_result.h"
#include "pool/detail/process/message.h"

namespace pool::detail {

class EventLoop {
 public:
  // A whole message from the worker of slot `worker`, or null at EOF or a failed read; `pid` is
  // the worker the channel was opened for. Returns whether to read that channel on.
  using OnMessage = std::function<bool(std::uint32_t worker, pid_t pid, const Message* message)>;
  // SIGCHLD arrived: some child may have exited.
  using OnChildExit = std::function<void()>;

  EventLoop(OnMessage on_message, OnChildExit on_child_exit);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // One channel per worker slot; called once, before any open().
  void add_channels(std::size_t workers);
  // Starts listening for SIGCHLD.
  void watch_children();
  // Takes `fd` as the channel of slot `worker` (replacing a closed one) and starts reading it.
  void open(std::uint32_t worker, int fd, pid_t pid);
  // Closes the channel; a read still pending ends with an error the handler ignores by pid.
  void close(std::uint32_t worker);
  // The channel's descriptor; -1 when none is open.
  int fd(std::uint32_t worker) const;

  // Catches SIGINT and/or SIGTERM until release_interrupts(); take_interrupt() then names the
  // signal, once.
  void catch_interrupts(bool sigint, bool sigterm);
  void release_interrupts();
  int take_interrupt();

  void restart();
  // Runs the handlers that are ready, without waiting.
  void poll();
  // Waits up to `wait` (forever when absent) for one handler, and runs it.
  void run_one(std::optional<Clock::duration> wait);

 private:
  struct Channel {
    std::unique_ptr<boost::asio::posix::stream_descriptor> socket;
    Message inbox{};
  };

  void arm_read(std::uint32_t worker, pid_t pid);
  void arm_sigchld();

  OnMessage on_message_;
  OnChildExit on_child_exit_;
  boost::asio::io_context io_;
  boost::asio::signal_set sigchld_;
  boost::asio::signal_set interrupts_;
  int interrupted_ = 0;
  // Sized once: pending reads point into the inboxes.
  std::vector<Channel> channels_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_EVENT_LOOP_H_
