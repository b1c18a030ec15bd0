#include "pool/detail/mpi/pool_core.h"

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "pool/detail/mpi/backoff.h"
#include "pool/detail/mpi/messages.h"
#include "pool/detail/mpi/rank_death.h"
#include "pool/detail/mpi/session.h"
#include "pool/detail/mpi/worker.h"
#include "pool/detail/serialization.h"
#include "pool/detail/throw_site.h"
#include "pool/detail/trace_buffer.h"
#include "pool/errors.h"

namespace pool::detail {

struct MpiSend {
  MPI_Request request = MPI_REQUEST_NULL;
  std::vector<std::byte> bytes;
};

void MpiPoolCore::start() {
  mpi::start_session();
  // A task that asks for its rank is served already.
  if (mpi::session().rank != 0 && !mpi::serving()) mpi::serve();
}

int MpiPoolCore::rank() {
  start();
  return mpi::session().rank;
}

int MpiPoolCore::world_size() {
  start();
  return mpi::session().size;
}

MpiPoolCore::MpiPoolCore(int workers, std::shared_ptr<Trace> trace,
                         std::chrono::nanoseconds task_timeout)
    : task_timeout_(task_timeout) {
  start();
  // MPI_Init, like mpirun's launch, is not the pool's start-up.
  const std::int64_t start_ns = trace ? monotonic_now_ns() : 0;
  mpi::Session& state = mpi::session();
  if (state.pool_alive) {
    throw std::logic_error(
        "pool::MpiPool: another MpiPool is alive; the worker ranks serve one pool at a time");
  }
  const int available = state.size - 1;
  if (workers < 0) throw std::invalid_argument("pool::MpiPool: workers must be >= 0");
  if (workers > std::max(available, 1)) {
    throw std::invalid_argument("pool::MpiPool: " + std::to_string(workers) +
                                " workers asked for, but the MPI job has " +
                                std::to_string(available) + " worker ranks (mpirun -np " +
                                std::to_string(state.size) + "; rank 0 hands out the work)");
  }
  const int used = workers == 0 ? available : std::min(workers, available);
  for (int rank = 1; rank <= used; ++rank) ranks_.push_back(MpiRank{rank, {}});
  if (trace) trace_ = std::make_unique<TraceSession>(std::move(trace), "mpi", size(), start_ns);
  state.pool_alive = true;
  if (!ranks_.empty()) mpi::install_termination_handler();
  if (!trace_) return;
  if (local()) {
    clock_offsets_.assign(1, 0);
    ready_ns_.assign(1, monotonic_now_ns());
    trace_->buffer(0)->record(TraceKind::kStartup, start_ns, ready_ns_[0], -1, -1, -1, 0);
    return;
  }
  try {
    measure_clock_offsets();
  } catch (...) {
    mpi::remove_termination_handler();
    state.pool_alive = false;
    throw;
  }
}

MpiPoolCore::~MpiPoolCore() {
  try {
    if (!lifecycle_.terminated()) {
      close();
      join();
    } else {
      drive_until([this] { return jobs_.empty(); }, std::nullopt);
      end_trace();
    }
    wait_sends();
  } catch (...) {
    // A destructor must not throw; the calls that failed said so to their callers.
  }
  if (trace_) {
    try {
      trace_->finish();  // the trace keeps what was recorded
    } catch (...) {
    }
  }
  mpi::remove_termination_handler();
  mpi::session().pool_alive = false;
}

int MpiPoolCore::size() const { return ranks_.empty() ? 1 : static_cast<int>(ranks_.size()); }

void MpiPoolCore::check_can_submit(Lifecycle::State latest) const {
  if (lifecycle_.state() > latest) throw lifecycle_.not_running();
}

void MpiPoolCore::submit(std::shared_ptr<MpiJob> job, Lifecycle::State latest) {
  check_can_submit(latest);
  job->id_ = next_job_id_++;
  jobs_.push_back(std::move(job));
}

void MpiPoolCore::close() { lifecycle_.close(); }

void MpiPoolCore::join() {
  lifecycle_.check_can_join();
  if (lifecycle_.state() == Lifecycle::State::kClosed) streams_.post_rest();
  drive_until([this] { return jobs_.empty(); }, std::nullopt);
  lifecycle_.stopped();
  end_trace();
}

void MpiPoolCore::terminate() {
  if (!lifecycle_.terminate()) return;
  // A task running on another rank cannot be stopped from here: the rest is cancelled and the
  // running chunks' results are dropped as they come (their spans, within the shutdown, stay).
  if (trace_) trace_->shutdown_begins();
  for (const auto& job : jobs_) {
    job->cancel(Lifecycle::terminated_before_done());
  }
  drive_until([this] { return jobs_.empty(); }, std::nullopt);
  end_trace();
}

void MpiPoolCore::abandon(const std::shared_ptr<MpiJob>& job) {
  job->cancel(nullptr);
  drive_until([&] { return std::find(jobs_.begin(), jobs_.end(), job) == jobs_.end(); },
              std::nullopt);
}

bool MpiPoolCore::drive_until(const std::function<bool()>& done,
                              std::optional<Clock::time_point> deadline) {
  mpi::DriveScope scope;
  mpi::Backoff backoff;
  for (;;) {
    if (const int signal_number = mpi::termination_signal()) die_on_signal(signal_number);
    if (done()) return true;
    bool progressed = local() ? run_locally() : hand_out();
    if (!local()) {
      progressed = receive_replies() || progressed;
      if (task_timeout_.count() > 0) check_silent_ranks();
    }
    progressed = settle_finished() || progressed;
    test_sends();
    if (done()) return true;
    if (deadline && Clock::now() >= *deadline) return false;
    if (progressed) {
      backoff.reset();
      continue;
    }
    if (mpi::chunks_out() == 0 && sends_.empty()) return done();  // nothing can change
    backoff.pause();
  }
}

bool MpiPoolCore::hand_out() {
  bool handed = false;
  for (;;) {
    auto rank = std::min_element(ranks_.begin(), ranks_.end(), [](const auto& a, const auto& b) {
      return a.in_flight.size() < b.in_flight.size();
    });
    if (rank->in_flight.size() >= kChunksPerRank) return handed;
    MpiChunk chunk;
    std::shared_ptr<MpiJob> job = next_chunk(chunk);
    if (!job) return handed;
    if (std::find(job->ranks_told_.begin(), job->ranks_told_.end(), rank->rank) ==
        job->ranks_told_.end()) {
      mpi::CommandHeader header{mpi::Command::kJob, 0, job->id_, job->runner_};
      send(rank->rank, &header, sizeof header, job->state_);
      job->ranks_told_.push_back(rank->rank);
    }
    mpi::CommandHeader header{mpi::Command::kChunk, 0,           job->id_,         0, chunk.index,
                              chunk.first_item,     chunk.count, chunk.range_first};
    if (trace_) header.flags = mpi::kTracedChunk;
    send(rank->rank, &header, sizeof header, chunk.items);
    chunk.items.clear();
    chunk.items.shrink_to_fit();
    ++job->in_flight_;
    mpi::count_chunk_sent();
    if (rank->in_flight.empty()) rank->front_since = Clock::now();
    rank->in_flight.push_back(MpiInFlight{std::move(job), std::move(chunk)});
    handed = true;
  }
}

std::shared_ptr<MpiJob> MpiPoolCore::next_chunk(MpiChunk& chunk) {
  for (const auto& job : jobs_) {
    if (job->next_chunk(chunk)) return job;
  }
  return nullptr;
}

bool MpiPoolCore::run_locally() {
  MpiChunk chunk;
  const std::shared_ptr<MpiJob> job = next_chunk(chunk);
  if (!job) return false;
  // Traced, rank 0 is the one worker and times the chunk as a worker rank would.
  mpi::ChunkTimes times;
  if (trace_) times.received_ns = monotonic_now_ns();
  auto call = std::find_if(local_calls_.begin(), local_calls_.end(),
                           [&](const auto& entry) { return entry.first == job.get(); });
  if (call == local_calls_.end()) {
    call = local_calls_.emplace(
        local_calls_.end(), std::piecewise_construct, std::forward_as_tuple(job.get()),
        std::forward_as_tuple(job->runner_, reinterpret_cast<const std::byte*>(job->state_.data()),
                              job->state_.size()));
  }
  std::string payload;
  const EncodedChunk input{chunk.first_item, chunk.count, chunk.range_first,
                           reinterpret_cast<const std::byte*>(chunk.items.data()),
                           chunk.items.size()};
  std::optional<TaskFailure> failure;
  {
    const RecordingThrowSites recording;  // this thread runs the tasks: their errors get stacks
    failure =
        trace_ ? call->second.run(input, payload, times.run) : call->second.run(input, payload);
  }
  if (failure) {
    job->chunk_failed(chunk, std::move(*failure));
  } else {
    const auto* bytes = reinterpret_cast<const std::byte*>(payload.data());
    if (std::byte* destination = job->destination(chunk, payload.size())) {
      std::memcpy(destination, bytes, payload.size());
      job->chunk_done(chunk, nullptr, payload.size(), true);
    } else {
      job->chunk_done(chunk, bytes, payload.size(), false);
    }
    job->count_done(chunk.count);
  }
  if (trace_) {
    times.reply_ns = monotonic_now_ns();
    record_chunk(0, *job, chunk, times);
  }
  return true;
}

bool MpiPoolCore::receive_replies() {
  mpi::Session& state = mpi::session();
  bool received = false;
  for (;;) {
    handle_death_notices();
    MPI_Status status;
    int arrived = 0;
    mpi::check(MPI_Iprobe(MPI_ANY_SOURCE, mpi::kReply, state.comm, &arrived, &status),
               "MPI_Iprobe");
    if (!arrived) return received;
    received = true;
    const int source = status.MPI_SOURCE;
    mpi::TracedReply message;  // an untraced reply fills its header alone
    mpi::check(MPI_Recv(&message, sizeof message, MPI_BYTE, source, mpi::kReply, state.comm,
                        MPI_STATUS_IGNORE),
               "MPI_Recv");
    const mpi::ReplyHeader& reply = message.header;
    MpiRank& rank = ranks_.at(static_cast<std::size_t>(source - 1));
    if (rank.in_flight.empty() || rank.in_flight.front().job->id_ != reply.job ||
        rank.in_flight.front().chunk.index != reply.chunk) {
      throw std::logic_error("pool::MpiPool: rank " + std::to_string(source) +
                             " answered a chunk it was not given");
    }
    MpiInFlight done = std::move(rank.in_flight.front());
    rank.in_flight.pop_front();
    rank.front_since = Clock::now();  // the next chunk, already there, starts now
    --done.job->in_flight_;
    mpi::count_chunk_answered();
    MpiJob& job = *done.job;
    if (trace_ && (reply.flags & mpi::kTracedChunk) != 0) {
      record_chunk(source - 1, job, done.chunk, message.times);
    }
    const std::size_t size = static_cast<std::size_t>(reply.payload_size);
    std::byte* destination = reply.status == mpi::Status::kDone && size > 0
                                 ? job.destination(done.chunk, size)
                                 : nullptr;
    if (destination == nullptr) {
      buffer_.resize(size);
      destination = buffer_.data();
    }
    if (size > 0) {
      mpi::check(MPI_Recv(destination, mpi::checked_count(size), MPI_BYTE, source, mpi::kPayload,
                          state.comm, MPI_STATUS_IGNORE),
                 "MPI_Recv");
    }
    if (reply.status == mpi::Status::kFailed) {
      Decoder<TaskFailure> decode(buffer_.data(), size);
      job.chunk_failed(done.chunk, decode.next());
    } else {
      const bool in_place = destination != buffer_.data();
      job.chunk_done(done.chunk, in_place ? nullptr : buffer_.data(), size, in_place);
      job.count_done(done.chunk.count);
    }
  }
}

bool MpiPoolCore::settle_finished() {
  bool settled = false;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    MpiJob& job = **it;
    if (job.in_flight_ > 0 || !job.exhausted()) {
      ++it;
      continue;
    }
    for (int rank : job.ranks_told_) {
      mpi::CommandHeader header{mpi::Command::kDrop, 0, job.id_};
      send(rank, &header, sizeof header, std::string());
    }
    std::erase_if(local_calls_, [&](const auto& entry) { return entry.first == &job; });
    const std::shared_ptr<MpiJob> keep = *it;
    it = jobs_.erase(it);
    keep->end_progress();
    keep->finish();
    settled = true;
  }
  return settled;
}

void MpiPoolCore::send(int rank, const void* header, std::size_t header_size,
                       const std::string& body) {
  MpiSend& message = sends_.emplace_back();
  message.bytes.resize(header_size + body.size());
  std::memcpy(message.bytes.data(), header, header_size);
  if (!body.empty()) std::memcpy(message.bytes.data() + header_size, body.data(), body.size());
  mpi::check(MPI_Isend(message.bytes.data(), mpi::checked_count(message.bytes.size()), MPI_BYTE,
                       rank, mpi::kCommand, mpi::session().comm, &message.request),
             "MPI_Isend");
}

void MpiPoolCore::test_sends() {
  for (auto it = sends_.begin(); it != sends_.end();) {
    int done = 0;
    mpi::check(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    it = done ? sends_.erase(it) : std::next(it);
  }
}

void MpiPoolCore::wait_sends() {
  mpi::Backoff backoff;
  while (!sends_.empty()) {
    test_sends();
    if (!sends_.empty()) backoff.pause();
  }
}

}  // namespace pool::detail
