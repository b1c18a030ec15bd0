// The messages between rank 0 and the worker ranks of an MpiPool (pool_core.h says who sends
// which when), and the check every MPI call's result goes through. Each is a plain struct sent as
// its bytes: every rank runs the same executable. mpi.h stays out of this header.
#ifndef POOL_DETAIL_MPI_MESSAGES_H_
#define POOL_DETAIL_MPI_MESSAGES_H_

#include <cstddef>
#include <cstdint>

#include "pool/detail/mpi/runner.h"

namespace pool::detail::mpi {

enum Tag : int { kCommand = 1, kReply = 2, kPayload = 3, kDeath = 4, kClock = 5 };
enum class Command : std::uint32_t { kJob = 1, kChunk = 2, kDrop = 3, kStop = 4, kReadClock = 5 };
enum class Status : std::uint32_t { kDone = 1, kFailed = 2 };

// In CommandHeader::flags, a chunk to time; in ReplyHeader::flags, ChunkTimes follow.
constexpr std::uint32_t kTracedChunk = 1;

struct CommandHeader {
  Command command;
  std::uint32_t flags = 0;
  std::uint64_t job = 0;
  std::uint64_t runner = 0;  // kJob
  std::uint64_t chunk = 0;   // kChunk: index, first item, count, first range value
  std::int64_t first_item = 0;
  std::uint64_t count = 0;
  std::int64_t range_first = 0;
};

struct ReplyHeader {
  std::uint64_t job = 0;
  std::uint64_t chunk = 0;
  Status status = Status::kDone;
  std::uint32_t flags = 0;
  std::uint64_t payload_size = 0;
};

// A traced chunk's times on the clock of the rank that ran it.
struct ChunkTimes {
  std::int64_t received_ns = 0;  // its command was received
  MpiRunTimes run;               // its first task began, its last task ended; 0: none ran
  std::int64_t reply_ns = 0;     // its reply is about to be sent
};

// What a traced chunk's kReply message holds; an untraced one sends the header alone.
struct TracedReply {
  ReplyHeader header;
  ChunkTimes times;
};

struct DeathNotice {
  std::int32_t signal_number = 0;
  std::int32_t unused = 0;
  std::uint64_t job = 0;
  std::uint64_t chunk = 0;
};

// `bytes` as an MPI count; throws std::length_error past 2 GiB.
int checked_count(std::size_t bytes);

// Throws std::runtime_error naming `what` and MPI's reason unless `code` is MPI_SUCCESS.
void check(int code, const char* what);

}  // namespace pool::detail::mpi

#endif  // POOL_DETAIL_MPI_MESSAGES_H_
