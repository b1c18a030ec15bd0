// MpiPoolCore's tracing (see pool_core.h): each worker rank's clock offset, a chunk's spans on
// rank 0's clock, and the end of each rank's row.
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "pool/detail/mpi/backoff.h"
#include "pool/detail/mpi/messages.h"
#include "pool/detail/mpi/pool_core.h"
#include "pool/detail/mpi/rank_death.h"
#include "pool/detail/mpi/session.h"
#include "pool/detail/trace_buffer.h"
#include "pool/detail/trace_session.h"

namespace pool::detail {

namespace {

// Clock exchanges per worker rank when a traced pool starts; the shortest round trip is kept.
constexpr int kClockRounds = 5;

// Polls `requests` until every one completed: done(i) right as request i does, check_ending()
// between polls (a rank died, or the job is ending). Yields before it sleeps, so that a clock
// exchange's round trip stays short.
void wait_all(std::vector<MPI_Request>& requests, const std::function<void(std::size_t)>& done,
              const std::function<void()>& check_ending) {
  std::size_t left = 0;
  for (const MPI_Request& request : requests) left += request != MPI_REQUEST_NULL ? 1 : 0;
  mpi::Backoff backoff;
  while (left > 0) {
    bool progressed = false;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      if (requests[i] == MPI_REQUEST_NULL) continue;  // completed: MPI_Test nulled it
      int completed = 0;
      mpi::check(MPI_Test(&requests[i], &completed, MPI_STATUS_IGNORE), "MPI_Test");
      if (!completed) continue;
      done(i);
      --left;
      progressed = true;
    }
    if (left == 0) return;
    check_ending();
    if (progressed) {
      backoff.reset();
    } else {
      backoff.pause();
    }
  }
}

}  // namespace

// Each worker rank's clock offset (its CLOCK_MONOTONIC minus rank 0's), as NTP estimates one:
// rank 0 reads T0, asks the rank for its clock t, and reads T1 when t arrives. The rank read t
// at some instant of [T0, T1] on rank 0's clock, so offset = t - (T0 + T1) / 2 is off by at most
// (T1 - T0) / 2, half the round trip; of kClockRounds exchanges the shortest one is kept (the
// first may wake a rank from its idle backoff). On one node both read the same clock and the
// estimate is within a few microseconds of 0. Drift over a pool's life (a few ppm between nodes)
// is not corrected. A row is ready, its start-up over, when its rank's exchanges are done.
void MpiPoolCore::measure_clock_offsets() {
  mpi::Session& state = mpi::session();
  mpi::DriveScope scope;
  const auto check_ending = [this] {
    if (const int signal_number = mpi::termination_signal()) die_on_signal(signal_number);
    handle_death_notices();
  };
  const mpi::CommandHeader ask{mpi::Command::kReadClock};
  clock_offsets_.assign(ranks_.size(), 0);
  ready_ns_.assign(ranks_.size(), 0);
  for (std::size_t w = 0; w < ranks_.size(); ++w) {
    const int rank = ranks_[w].rank;
    std::int64_t shortest = std::numeric_limits<std::int64_t>::max();
    for (int round = 0; round < kClockRounds; ++round) {
      std::int64_t theirs = 0;
      std::int64_t answered = 0;
      std::vector<MPI_Request> requests(2, MPI_REQUEST_NULL);
      mpi::check(
          MPI_Irecv(&theirs, sizeof theirs, MPI_BYTE, rank, mpi::kClock, state.comm, &requests[0]),
          "MPI_Irecv");
      const std::int64_t asked = monotonic_now_ns();
      mpi::check(
          MPI_Isend(&ask, sizeof ask, MPI_BYTE, rank, mpi::kCommand, state.comm, &requests[1]),
          "MPI_Isend");
      wait_all(
          requests,
          [&](std::size_t i) {
            if (i == 0) answered = monotonic_now_ns();
          },
          check_ending);
      if (answered - asked < shortest) {
        shortest = answered - asked;
        clock_offsets_[w] = theirs - (asked + (answered - asked) / 2);
      }
    }
    ready_ns_[w] = monotonic_now_ns();
    trace_->buffer(static_cast<int>(w))
        ->record(TraceKind::kStartup, trace_->start_ns(), ready_ns_[w], -1, -1, -1, 0);
  }
}

void MpiPoolCore::record_chunk(int worker, const MpiJob& job, const MpiChunk& chunk,
                               const mpi::ChunkTimes& times) {
  const auto w = static_cast<std::size_t>(worker);
  // On rank 0's clock, within what rank 0 knows: the chunk came after its row was ready, and its
  // reply is here now. So an offset's error (up to half a round trip) moves no span into the
  // row's start-up or past the reply; clamping is monotonic, so the rank's order of spans stays.
  const std::int64_t earliest = ready_ns_[w];
  const std::int64_t latest = monotonic_now_ns();
  const auto ours = [&](std::int64_t ns) {
    return std::clamp(ns - clock_offsets_[w], earliest, latest);
  };
  TraceBuffer& buffer = *trace_->buffer(worker);
  const auto record = [&](TraceKind kind, std::int64_t from, std::int64_t to) {
    buffer.record(kind, ours(from), ours(to), static_cast<std::int64_t>(job.id_),
                  static_cast<std::int64_t>(chunk.index), chunk.first_item, chunk.count);
  };
  if (times.run.begin_ns == 0) {  // it failed before any task ran
    record(TraceKind::kOverhead, times.received_ns, times.reply_ns);
    return;
  }
  record(TraceKind::kOverhead, times.received_ns, times.run.begin_ns);
  record(TraceKind::kRun, times.run.begin_ns, times.run.end_ns);
  record(TraceKind::kOverhead, times.run.end_ns, times.reply_ns);
}

void MpiPoolCore::end_trace() {
  if (!trace_) return;
  trace_->shutdown_begins();
  if (local()) {
    trace_->worker_ended(0, monotonic_now_ns());
  } else {
    // A rank answers a clock request after every message of the pool sent before it (MPI keeps
    // their order), so its answer says that the rank is done with the pool. All at once: each
    // rank may first have to wake from its idle backoff.
    mpi::Session& state = mpi::session();
    mpi::DriveScope scope;
    const mpi::CommandHeader ask{mpi::Command::kReadClock};
    std::vector<std::int64_t> clocks(ranks_.size());
    std::vector<MPI_Request> requests(2 * ranks_.size(), MPI_REQUEST_NULL);
    for (std::size_t w = 0; w < ranks_.size(); ++w) {
      mpi::check(MPI_Irecv(&clocks[w], sizeof clocks[w], MPI_BYTE, ranks_[w].rank, mpi::kClock,
                           state.comm, &requests[2 * w]),
                 "MPI_Irecv");
      mpi::check(MPI_Isend(&ask, sizeof ask, MPI_BYTE, ranks_[w].rank, mpi::kCommand, state.comm,
                           &requests[2 * w + 1]),
                 "MPI_Isend");
    }
    wait_all(
        requests,
        [&](std::size_t i) {
          if (i % 2 == 0) trace_->worker_ended(static_cast<int>(i / 2), monotonic_now_ns());
        },
        [this] {
          if (const int signal_number = mpi::termination_signal()) die_on_signal(signal_number);
          handle_death_notices();
        });
  }
  trace_->finish();
  trace_.reset();
}

}  // namespace pool::detail
