#include "pool/detail/process/event_loop.h"

#include <signal.h>

#include <boost/asio/read.hpp>
#include <utility>

namespace pool::detail {

EventLoop::EventLoop(OnMessage on_message, OnChildExit on_child_exit)
    : on_message_(std::move(on_message)),
      on_child_exit_(std::move(on_child_exit)),
      sigchld_(io_),
      interrupts_(io_) {}

void EventLoop::add_channels(std::size_t workers) { channels_.resize(workers); }

void EventLoop::watch_children() {
  sigchld_.add(SIGCHLD);
  arm_sigchld();
}

void EventLoop::arm_sigchld() {
  sigchld_.async_wait([this](const boost::system::error_code& error, int) {
    if (error) return;
    on_child_exit_();
    arm_sigchld();
  });
}

void EventLoop::open(std::uint32_t worker, int fd, pid_t pid) {
  channels_[worker].socket = std::make_unique<boost::asio::posix::stream_descriptor>(io_, fd);
  arm_read(worker, pid);
}

void EventLoop::arm_read(std::uint32_t worker, pid_t pid) {
  Channel& channel = channels_[worker];
  boost::asio::async_read(
      *channel.socket, boost::asio::buffer(&channel.inbox, sizeof(Message)),
      [this, worker, pid](const boost::system::error_code& error, std::size_t) {
        if (on_message_(worker, pid, error ? nullptr : &channels_[worker].inbox)) {
          arm_read(worker, pid);
        }
      });
}

void EventLoop::close(std::uint32_t worker) {
  Channel& channel = channels_[worker];
  if (!channel.socket) return;
  boost::system::error_code ignored;
  channel.socket->close(ignored);
}

int EventLoop::fd(std::uint32_t worker) const {
  const Channel& channel = channels_[worker];
  return channel.socket ? channel.socket->native_handle() : -1;
}

void EventLoop::catch_interrupts(bool sigint, bool sigterm) {
  if (sigint) interrupts_.add(SIGINT);
  if (sigterm) interrupts_.add(SIGTERM);
  interrupts_.async_wait([this](const boost::system::error_code& error, int signal_number) {
    if (!error) interrupted_ = signal_number;
  });
}

void EventLoop::release_interrupts() {
  boost::system::error_code ignored;
  interrupts_.cancel(ignored);
  interrupts_.remove(SIGINT, ignored);
  interrupts_.remove(SIGTERM, ignored);
}

int EventLoop::take_interrupt() { return std::exchange(interrupted_, 0); }

void EventLoop::restart() { io_.restart(); }

void EventLoop::poll() { io_.poll(); }

void EventLoop::run_one(std::optional<Clock::duration> wait) {
  io_.restart();
  if (wait) {
    io_.run_one_for(*wait);
  } else {
    io_.run_one();
  }
}

}  // namespace pool::detail
