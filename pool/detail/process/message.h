// The control messages a process pool's parent and its workers exchange over each worker's
// socket: fixed-size, and only for what shared memory cannot do: wake-ups (sent only to a side
// that said it sleeps), segment hand-overs (a memfd passed with the message), readiness and
// initializer failures.
#ifndef POOL_DETAIL_PROCESS_MESSAGE_H_
#define POOL_DETAIL_PROCESS_MESSAGE_H_

#include <cstdint>
#include <type_traits>

namespace pool::detail {

enum class MessageType : std::uint32_t {
  // parent -> worker
  kWake = 1,      // new jobs are posted
  kMapArena = 2,  // memfd, a = size: map it as the new arena, then ack with kMapped
  kMapSpill = 3,  // memfd, a = size: move your result buffer into it, then ack
  // A worker that is not a fork (bootstrap.h): a = bytes of the encoded Bootstrap that follow,
  // b = segments, each then passed with a kSegment (a = its size; 0: none, no descriptor).
  kBootstrap = 4,
  kSegment = 5,
  // program -> forkserver (forkserver.h): a pool's connection, passed with the message
  kConnect = 6,
  // pool -> forkserver: fork a worker serving on the passed socket
  kForkWorker = 7,
  // worker -> parent
  kProgress = 16,    // a job the sleeping parent may wait for moved on
  kReady = 17,       // the initializer ran
  kInitFailed = 18,  // a = offset, b = size of the encoded failure in the result buffer
  kNeedSpill = 19,   // a = bytes the result buffer must hold
  kMapped = 20,      // the last kMapArena / kMapSpill is mapped
  // forkserver -> pool
  kForked = 21,  // a = the worker's pid, passed with its pidfd; or a = 0, b = fork's errno
  kExited = 22,  // a = pid, b = its wait status
};

struct Message {
  MessageType type;
  std::uint32_t worker;
  std::uint64_t seq;
  std::uint64_t a;
  std::uint64_t b;
};
static_assert(std::is_trivially_copyable_v<Message> && sizeof(Message) == 32);

Message make_message(MessageType type, std::uint32_t worker, std::uint64_t seq = 0,
                     std::uint64_t a = 0, std::uint64_t b = 0);

// Blocking, whole-message I/O on a socket; retries on EINTR and waits out EAGAIN.
// read_message returns false on end of file (the peer closed its end or exited); a descriptor
// sent with the message is stored in *passed_fd (close-on-exec), or closed when passed_fd is null.
// write_message sends `passed_fd` with the message unless it is -1; it returns false when the
// peer is gone, and never raises SIGPIPE.
bool read_message(int fd, Message& message, int* passed_fd = nullptr);
bool write_message(int fd, const Message& message, int passed_fd = -1);

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_MESSAGE_H_
