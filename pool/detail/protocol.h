// What the parent and its workers share: the control block in shared memory (the hot path: the
// job, the chunk cursor, per-worker progress) and the fixed-size control messages on each
// worker's socket (wake-ups, segment hand-overs, completion and failure notices).
#ifndef POOL_DETAIL_PROTOCOL_H_
#define POOL_DETAIL_PROTOCOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace pool::detail {

class WorkerContext;

// Describes one call (map, ...) to the workers. Offsets are into the arena segment.
struct JobDescriptor {
  // Runs the call's chunks in a worker; an instantiation of a job template. Its address is valid
  // in every worker because workers are forks of the parent.
  void (*runner)(WorkerContext&) = nullptr;
  std::uint64_t n_items = 0;
  std::uint64_t chunksize = 1;
  std::uint64_t n_chunks = 0;
  std::int64_t range_first = 0;       // first value of a pool::range input
  std::uint64_t function_offset = 0;  // the encoded task function
  std::uint64_t function_size = 0;
  std::uint64_t arg_index_offset = 0;  // n_chunks + 1 offsets of encoded chunk arguments
  std::uint64_t result_offset = 0;     // trivially copyable results, one slot per item
  std::uint64_t record_offset = 0;     // one ChunkRecord per chunk for serialized results
};

// Where a worker serialized one chunk's results: a span of its result buffer.
struct ChunkRecord {
  std::uint32_t worker;
  std::uint32_t reserved;
  std::uint64_t offset;
  std::uint64_t size;
};

struct alignas(64) WorkerSlot {
  // The item the worker is running, or -1; read by the parent when the worker dies.
  std::atomic<std::int64_t> current_item{-1};
};

struct ControlBlock {
  std::atomic<std::uint64_t> job_seq{0};
  JobDescriptor job;
  alignas(64) std::atomic<std::uint64_t> next_chunk{0};
  alignas(64) std::atomic<std::uint32_t> cancelled{0};
  // WorkerSlot[size] follows, at slots_offset().

  static constexpr std::size_t slots_offset() {
    return (sizeof(ControlBlock) + alignof(WorkerSlot) - 1) / alignof(WorkerSlot) *
           alignof(WorkerSlot);
  }
  static constexpr std::size_t bytes_for(std::size_t workers) {
    return slots_offset() + workers * sizeof(WorkerSlot);
  }
  WorkerSlot* slots() {
    return reinterpret_cast<WorkerSlot*>(reinterpret_cast<std::byte*>(this) + slots_offset());
  }
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<std::int64_t>::is_always_lock_free &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "cross-process atomics must be lock-free");

enum class MessageType : std::uint32_t {
  // parent -> worker
  kRunJob = 1,    // seq: run the job in the control block
  kMapArena = 2,  // name, a = size: map this segment as the new arena, then ack with kMapped
  kMapSpill = 3,  // name, a = size: move your result buffer into this segment, then ack
  // worker -> parent
  kJobDone = 16,     // seq: no more chunks for this worker
  kTaskFailed = 17,  // a = offset, b = size of the encoded failure in the worker's result buffer
  kNeedSpill = 18,   // a = bytes the result buffer must hold
  kMapped = 19,      // the last kMapArena / kMapSpill is mapped
};

struct Message {
  MessageType type;
  std::uint32_t worker;
  std::uint64_t seq;
  std::uint64_t a;
  std::uint64_t b;
  char name[64];
};
static_assert(std::is_trivially_copyable_v<Message> && sizeof(Message) == 96);

Message make_message(MessageType type, std::uint32_t worker, std::uint64_t seq = 0,
                     std::uint64_t a = 0, std::uint64_t b = 0, const char* name = nullptr);

// Blocking, whole-message I/O on a socket; retries on EINTR and waits out EAGAIN.
// read_message returns false on end of file (the peer closed its end or exited);
// write_message returns false when the peer is gone, and never raises SIGPIPE.
bool read_message(int fd, Message& message);
bool write_message(int fd, const Message& message);

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROTOCOL_H_
