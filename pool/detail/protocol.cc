#include "pool/detail/protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace pool::detail {

Message make_message(MessageType type, std::uint32_t worker, std::uint64_t seq, std::uint64_t a,
                     std::uint64_t b, const char* name) {
  Message message{};
  message.type = type;
  message.worker = worker;
  message.seq = seq;
  message.a = a;
  message.b = b;
  if (name != nullptr) std::strncpy(message.name, name, sizeof(message.name) - 1);
  return message;
}

bool read_message(int fd, Message& message) {
  auto* out = reinterpret_cast<char*>(&message);
  std::size_t got = 0;
  while (got < sizeof(Message)) {
    const ssize_t n = ::read(fd, out + got, sizeof(Message) - got);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
    } else if (n == 0) {
      if (got == 0) return false;
      throw std::runtime_error("pool: control channel closed mid-message");
    } else if (errno != EINTR) {
      throw std::system_error(errno, std::generic_category(), "pool: reading a control message");
    }
  }
  message.name[sizeof(message.name) - 1] = '\0';
  return true;
}

bool write_message(int fd, const Message& message) {
  const auto* in = reinterpret_cast<const char*>(&message);
  std::size_t sent = 0;
  while (sent < sizeof(Message)) {
    // MSG_NOSIGNAL: a peer that died must not kill this process with SIGPIPE.
    const ssize_t n = ::send(fd, in + sent, sizeof(Message) - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<std::size_t>(n);
    } else if (errno == EPIPE || errno == ECONNRESET) {
      return false;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      pollfd writable{fd, POLLOUT, 0};
      ::poll(&writable, 1, -1);
    } else if (errno != EINTR) {
      throw std::system_error(errno, std::generic_category(), "pool: writing a control message");
    }
  }
  return true;
}

}  // namespace pool::detail
