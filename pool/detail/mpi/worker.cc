#include "pool/detail/mpi/worker.h"

#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "pool/detail/mpi/backoff.h"
#include "pool/detail/mpi/call.h"
#include "pool/detail/mpi/messages.h"
#include "pool/detail/mpi/session.h"
#include "pool/detail/serialization.h"
#include "pool/detail/task_failure.h"
#include "pool/detail/throw_site.h"
#include "pool/detail/trace_buffer.h"

namespace pool::detail::mpi {

namespace {

struct RunningChunk {
  std::atomic<std::uint64_t> job{0};
  std::atomic<std::uint64_t> chunk{0};
};
RunningChunk running_chunk;

constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
struct sigaction previous_fatal_actions[sizeof kFatalSignals / sizeof kFatalSignals[0]];

// Best effort: tell rank 0 which chunk dies with this rank (signal 0: exit()). Rank 0 also copes
// when this notice never comes.
void tell_rank0_of_death(int signal_number) {
  DeathNotice notice{signal_number, 0, running_chunk.job.load(), running_chunk.chunk.load()};
  MPI_Request request;
  if (MPI_Isend(&notice, sizeof notice, MPI_BYTE, 0, kDeath, session().comm, &request) !=
      MPI_SUCCESS) {
    return;
  }
  for (int i = 0; i < 1000; ++i) {
    int done = 0;
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return;
    usleep(1000);
  }
}

// Then dies by the previous action (Open MPI's handler prints a backtrace).
void on_fatal_signal(int signal_number) {
  tell_rank0_of_death(signal_number);
  for (std::size_t i = 0; i < sizeof kFatalSignals / sizeof kFatalSignals[0]; ++i) {
    if (kFatalSignals[i] == signal_number)
      sigaction(signal_number, &previous_fatal_actions[i], nullptr);
  }
  raise(signal_number);
}

bool serving_now = false;

// A task that calls exit() ends its rank as surely as a signal; rank 0 must hear about it, and
// MPI_Finalize from here would wait for ranks that never join.
void on_exit_while_serving() {
  if (!serving_now) return;
  tell_rank0_of_death(0);
  _exit(1);
}

void install_fatal_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_fatal_signal;
  sigemptyset(&action.sa_mask);
  for (std::size_t i = 0; i < sizeof kFatalSignals / sizeof kFatalSignals[0]; ++i) {
    sigaction(kFatalSignals[i], &action, &previous_fatal_actions[i]);
  }
}

// Runs a chunk and answers it. Traced, its times go after the reply's header; tracing is decided
// once per chunk, so an untraced one runs as in a build without tracing.
template <bool kTraced>
void serve_chunk(MPI_Comm comm, MpiCall& call, const CommandHeader& header, const std::byte* body,
                 std::size_t body_size) {
  ReplyHeader reply{header.job, header.chunk};
  ChunkTimes times;
  if constexpr (kTraced) times.received_ns = monotonic_now_ns();
  std::string payload;
  running_chunk.job.store(header.job);
  running_chunk.chunk.store(header.chunk);
  const EncodedChunk input{header.first_item, header.count, header.range_first, body, body_size};
  std::optional<TaskFailure> failure;
  if constexpr (kTraced) {
    failure = call.run(input, payload, times.run);
  } else {
    failure = call.run(input, payload);
  }
  if (failure) {
    reply.status = Status::kFailed;
    payload = encode_one(*failure);
  }
  running_chunk.job.store(0);
  reply.payload_size = payload.size();
  if constexpr (kTraced) {
    reply.flags = kTracedChunk;
    times.reply_ns = monotonic_now_ns();
    const TracedReply traced{reply, times};
    check(MPI_Send(&traced, sizeof traced, MPI_BYTE, 0, kReply, comm), "MPI_Send");
  } else {
    check(MPI_Send(&reply, sizeof reply, MPI_BYTE, 0, kReply, comm), "MPI_Send");
  }
  if (!payload.empty()) {
    check(MPI_Send(payload.data(), checked_count(payload.size()), MPI_BYTE, 0, kPayload, comm),
          "MPI_Send");
  }
}

}  // namespace

[[noreturn]] void serve() {
  Session& state = session();
  install_fatal_signal_handlers();
  record_throw_sites();
  serving_now = true;
  std::atexit(on_exit_while_serving);
  std::unordered_map<std::uint64_t, MpiCall> calls;
  std::vector<std::byte> message;
  Backoff backoff;
  for (;;) {
    MPI_Status status;
    int arrived = 0;
    check(MPI_Iprobe(0, kCommand, state.comm, &arrived, &status), "MPI_Iprobe");
    if (!arrived) {
      backoff.pause();
      continue;
    }
    backoff.reset();
    int bytes = 0;
    MPI_Get_count(&status, MPI_BYTE, &bytes);
    message.resize(static_cast<std::size_t>(bytes));
    check(MPI_Recv(message.data(), bytes, MPI_BYTE, 0, kCommand, state.comm, MPI_STATUS_IGNORE),
          "MPI_Recv");
    CommandHeader header;
    std::memcpy(&header, message.data(), sizeof header);
    const std::byte* body = message.data() + sizeof header;
    const std::size_t body_size = message.size() - sizeof header;

    if (header.command == Command::kStop) break;
    if (header.command == Command::kDrop) {
      calls.erase(header.job);
      continue;
    }
    if (header.command == Command::kJob) {
      calls.try_emplace(header.job, header.runner, body, body_size);
      continue;
    }
    if (header.command == Command::kReadClock) {
      const std::int64_t now = monotonic_now_ns();
      check(MPI_Send(&now, sizeof now, MPI_BYTE, 0, kClock, state.comm), "MPI_Send");
      continue;
    }
    MpiCall& call = calls.at(header.job);
    if ((header.flags & kTracedChunk) != 0) {
      serve_chunk<true>(state.comm, call, header, body, body_size);
    } else {
      serve_chunk<false>(state.comm, call, header, body, body_size);
    }
  }
  calls.clear();
  serving_now = false;
  MPI_Comm_free(&state.comm);
  MPI_Finalize();
  std::exit(0);
}

bool serving() { return serving_now; }

}  // namespace pool::detail::mpi
