#include "pool/detail/process/message.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace pool::detail {
namespace {

// Room for one descriptor's control message.
union FdControl {
  cmsghdr header;
  char bytes[CMSG_SPACE(sizeof(int))];
};

}  // namespace

Message make_message(MessageType type, std::uint32_t worker, std::uint64_t seq, std::uint64_t a,
                     std::uint64_t b) {
  Message message{};
  message.type = type;
  message.worker = worker;
  message.seq = seq;
  message.a = a;
  message.b = b;
  return message;
}

bool read_message(int fd, Message& message, int* passed_fd) {
  if (passed_fd != nullptr) *passed_fd = -1;
  auto* out = reinterpret_cast<char*>(&message);
  std::size_t got = 0;
  while (got < sizeof(Message)) {
    iovec part{out + got, sizeof(Message) - got};
    FdControl control{};
    msghdr header{};
    header.msg_iov = &part;
    header.msg_iovlen = 1;
    header.msg_control = control.bytes;
    header.msg_controllen = sizeof(control.bytes);
    const ssize_t n = ::recvmsg(fd, &header, MSG_CMSG_CLOEXEC);
    if (n > 0) {
      for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int received = -1;
        std::memcpy(&received, CMSG_DATA(c), sizeof(int));
        if (passed_fd != nullptr && *passed_fd < 0) {
          *passed_fd = received;
        } else {
          ::close(received);
        }
      }
      got += static_cast<std::size_t>(n);
    } else if (n == 0) {
      if (got == 0) return false;
      throw std::runtime_error("pool: control channel closed mid-message");
    } else if (errno != EINTR) {
      throw std::system_error(errno, std::generic_category(), "pool: reading a control message");
    }
  }
  return true;
}

bool write_message(int fd, const Message& message, int passed_fd) {
  const auto* in = reinterpret_cast<const char*>(&message);
  std::size_t sent = 0;
  while (sent < sizeof(Message)) {
    iovec part{const_cast<char*>(in + sent), sizeof(Message) - sent};
    FdControl control{};
    msghdr header{};
    header.msg_iov = &part;
    header.msg_iovlen = 1;
    // The descriptor travels with the message's first byte.
    if (passed_fd >= 0 && sent == 0) {
      header.msg_control = control.bytes;
      header.msg_controllen = sizeof(control.bytes);
      cmsghdr* c = CMSG_FIRSTHDR(&header);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &passed_fd, sizeof(int));
    }
    // MSG_NOSIGNAL: a peer that died must not kill this process with SIGPIPE.
    const ssize_t n = ::sendmsg(fd, &header, MSG_NOSIGNAL);
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
