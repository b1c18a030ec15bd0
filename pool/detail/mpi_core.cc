#include "pool/detail/mpi_core.h"

#include <mpi.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include "pool/detail/mpi_runner.h"
#include "pool/detail/serialization.h"
#include "pool/errors.h"

namespace pool::detail {

// ---------------------------------------------------------------------------------------------
// Messages.

namespace {

enum Tag : int { kCommand = 1, kReply = 2, kPayload = 3, kDeath = 4, kClock = 5 };
enum class Command : std::uint32_t { kJob = 1, kChunk = 2, kDrop = 3, kStop = 4, kReadClock = 5 };
enum class Status : std::uint32_t { kDone = 1, kFailed = 2 };

// In CommandHeader::flags, a chunk to time; in ReplyHeader::flags, MpiChunkTimes follow.
constexpr std::uint32_t kTraced = 1;

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

// What a traced chunk's kReply message holds; an untraced one sends the header alone.
struct TracedReply {
  ReplyHeader header;
  MpiChunkTimes times;
};

struct DeathNotice {
  std::int32_t signal_number = 0;
  std::int32_t unused = 0;
  std::uint64_t job = 0;
  std::uint64_t chunk = 0;
};

int checked_count(std::size_t bytes) {
  if (bytes > static_cast<std::size_t>(INT_MAX)) {
    throw std::length_error("pool::MpiPool: a message over 2 GiB; use a smaller chunksize");
  }
  return static_cast<int>(bytes);
}

void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string("pool::MpiPool: ") + what +
                           " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

// Waits without spinning for long: a rank waiting must leave its core to the ranks computing,
// which often share the node. Yields first, then sleeps 10 us, doubling up to 1 ms.
class Backoff {
 public:
  void reset() { rounds_ = 0; }
  void pause() {
    ++rounds_;
    if (rounds_ < 50) {
      sched_yield();
      return;
    }
    const int doublings = std::min(rounds_ - 50, 7);
    std::this_thread::sleep_for(std::chrono::microseconds(10 << doublings));
  }

 private:
  int rounds_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The process's MPI session, shared by every pool the program creates.

struct Session {
  bool started = false;
  bool we_initialized = false;
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  bool pool_alive = false;
};

Session& session() {
  static Session state;
  return state;
}

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

// MPI_Finalize first deletes MPI_COMM_SELF's attributes: the hook that stops the worker ranks,
// whether the program or finalize_at_exit() finalizes.
int stop_workers_at_finalize(MPI_Comm, int, void*, void*) {
  Session& state = session();
  CommandHeader stop{Command::kStop};
  for (int rank = 1; rank < state.size; ++rank) {
    MPI_Send(&stop, sizeof stop, MPI_BYTE, rank, kCommand, state.comm);
  }
  return MPI_SUCCESS;
}

// ---------------------------------------------------------------------------------------------
// Worker ranks.

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

bool serving = false;

// A task that calls exit() ends its rank as surely as a signal; rank 0 must hear about it, and
// MPI_Finalize from here would wait for ranks that never join.
void on_exit_while_serving() {
  if (!serving) return;
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
  MpiChunkTimes times;
  if constexpr (kTraced) times.received_ns = monotonic_now_ns();
  std::string payload;
  running_chunk.job.store(header.job);
  running_chunk.chunk.store(header.chunk);
  const MpiChunkInput input{header.first_item, header.count, header.range_first, body, body_size};
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
    reply.flags = kTraced;
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

[[noreturn]] void serve() {
  Session& state = session();
  install_fatal_signal_handlers();
  serving = true;
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
    if ((header.flags & kTraced) != 0) {
      serve_chunk<true>(state.comm, call, header, body, body_size);
    } else {
      serve_chunk<false>(state.comm, call, header, body, body_size);
    }
  }
  calls.clear();
  serving = false;
  MPI_Comm_free(&state.comm);
  MPI_Finalize();
  std::exit(0);
}

// ---------------------------------------------------------------------------------------------
// Rank 0: ending the job when a worker rank dies.

std::atomic<int> termination_signal{0};
std::atomic<bool> in_drive{false};
std::atomic<std::uint64_t> chunks_out{0};
struct sigaction previous_term_action;
bool term_handler_installed = false;

void write_all(const char* text) {
  std::size_t left = strlen(text);
  while (left > 0) {
    const ssize_t written = write(STDERR_FILENO, text, left);
    if (written <= 0) return;
    text += written;
    left -= static_cast<std::size_t>(written);
  }
}

// mpirun and srun end a job in which a rank died by sending SIGTERM to the others. Inside a pool
// wait the loop reports the lost chunks; elsewhere only what is safe in a handler is said.
void on_termination_signal(int signal_number) {
  if (in_drive.load()) {
    termination_signal.store(signal_number);
    return;
  }
  char digits[24];
  std::uint64_t value = chunks_out.load();
  char* at = digits + sizeof digits;
  *--at = '\0';
  do {
    *--at = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  write_all(
      "pool::MpiPool: rank 0 received SIGTERM (the MPI job is ending: a rank died or was "
      "killed, or the job was cancelled); chunks in flight, now lost: ");
  write_all(at);
  write_all("\n");
  _exit(128 + signal_number);
}

void install_termination_handler() {
  struct sigaction current {};
  sigaction(SIGTERM, nullptr, &current);
  if (current.sa_handler != SIG_DFL) return;  // the program's own handler stays
  struct sigaction action {};
  action.sa_handler = on_termination_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, &previous_term_action);
  term_handler_installed = true;
}

void remove_termination_handler() {
  if (!term_handler_installed) return;
  sigaction(SIGTERM, &previous_term_action, nullptr);
  term_handler_installed = false;
}

class DriveScope {
 public:
  DriveScope() : outer_(in_drive.exchange(true)) {}
  ~DriveScope() { in_drive.store(outer_); }

 private:
  bool outer_;
};

std::string signal_name(int signal_number) {
  const char* text = strsignal(signal_number);
  return "signal " + std::to_string(signal_number) + " (" + (text ? text : "?") + ")";
}

// Clock exchanges per worker rank when a traced pool starts; the shortest round trip is kept.
constexpr int kClockRounds = 5;

// Polls `requests` until every one completed: done(i) right as request i does, check_ending()
// between polls (a rank died, or the job is ending). Yields before it sleeps, so that a clock
// exchange's round trip stays short.
void wait_all(std::vector<MPI_Request>& requests, const std::function<void(std::size_t)>& done,
              const std::function<void()>& check_ending) {
  std::size_t left = 0;
  for (const MPI_Request& request : requests) left += request != MPI_REQUEST_NULL ? 1 : 0;
  Backoff backoff;
  while (left > 0) {
    bool progressed = false;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      if (requests[i] == MPI_REQUEST_NULL) continue;  // completed: MPI_Test nulled it
      int completed = 0;
      check(MPI_Test(&requests[i], &completed, MPI_STATUS_IGNORE), "MPI_Test");
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

// ---------------------------------------------------------------------------------------------
// Rank 0.

struct MpiInFlight {
  std::shared_ptr<MpiJob> job;
  MpiChunk chunk;  // without its items
};

struct MpiRank {
  int rank = 0;
  std::deque<MpiInFlight> in_flight;
};

struct MpiSend {
  MPI_Request request = MPI_REQUEST_NULL;
  std::vector<std::byte> bytes;
};

void MpiJob::show_progress(std::optional<std::uint64_t> total, const char* description) {
  ProgressBarOptions options;
  options.description = description;
  bar_ = std::make_unique<ProgressBar>(total, std::move(options));
}

void MpiJob::count_done(std::uint64_t items) {
  items_done_ += items;
  if (bar_) bar_->update(items_done_);
}

void MpiJob::end_progress() {
  if (bar_) bar_->finish();
  bar_.reset();
}

void MpiPoolCore::start() {
  Session& state = session();
  if (!state.started) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init");
      state.we_initialized = true;
      std::atexit(finalize_at_exit);
    }
    check(MPI_Comm_dup(MPI_COMM_WORLD, &state.comm), "MPI_Comm_dup");
    MPI_Comm_rank(state.comm, &state.rank);
    MPI_Comm_size(state.comm, &state.size);
    state.started = true;
    if (state.rank == 0 && state.size > 1) {
      int key = MPI_KEYVAL_INVALID;
      check(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, stop_workers_at_finalize, &key, nullptr),
            "MPI_Comm_create_keyval");
      check(MPI_Comm_set_attr(MPI_COMM_SELF, key, nullptr), "MPI_Comm_set_attr");
    }
  }
  if (state.rank != 0 && !serving) serve();  // a task asking for its rank is served already
}

int MpiPoolCore::rank() {
  start();
  return session().rank;
}

int MpiPoolCore::world_size() {
  start();
  return session().size;
}

MpiPoolCore::MpiPoolCore(int workers, std::shared_ptr<Trace> trace) {
  start();
  // MPI_Init, like mpirun's launch, is not the pool's start-up.
  const std::int64_t start_ns = trace ? monotonic_now_ns() : 0;
  Session& state = session();
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
  if (!ranks_.empty()) install_termination_handler();
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
    remove_termination_handler();
    state.pool_alive = false;
    throw;
  }
}

MpiPoolCore::~MpiPoolCore() {
  try {
    if (!terminated_) {
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
  remove_termination_handler();
  session().pool_alive = false;
}

int MpiPoolCore::size() const { return ranks_.empty() ? 1 : static_cast<int>(ranks_.size()); }

void MpiPoolCore::check_can_submit() const {
  if (closed_ || terminated_) throw PoolNotRunning("pool::MpiPool: the pool is not running");
}

void MpiPoolCore::submit(std::shared_ptr<MpiJob> job) {
  check_can_submit();
  job->id_ = next_job_id_++;
  jobs_.push_back(std::move(job));
}

void MpiPoolCore::close() { closed_ = true; }

void MpiPoolCore::join() {
  if (!closed_ && !terminated_) {
    throw std::logic_error("pool::MpiPool::join: call close() or terminate() first");
  }
  drive_until([this] { return jobs_.empty(); }, std::nullopt);
  end_trace();
}

void MpiPoolCore::terminate() {
  if (terminated_) return;
  terminated_ = true;
  closed_ = true;
  // A task running on another rank cannot be stopped from here: the rest is cancelled and the
  // running chunks' results are dropped as they come (their spans, within the shutdown, stay).
  if (trace_) trace_->shutdown_begins();
  for (const auto& job : jobs_) {
    job->cancel(std::make_exception_ptr(PoolNotRunning("pool::MpiPool: the pool was terminated")));
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
  DriveScope scope;
  Backoff backoff;
  for (;;) {
    if (const int signal_number = termination_signal.load()) die_on_signal(signal_number);
    if (done()) return true;
    bool progressed = local() ? run_locally() : hand_out();
    if (!local()) progressed = receive_replies() || progressed;
    progressed = settle_finished() || progressed;
    test_sends();
    if (done()) return true;
    if (deadline && Clock::now() >= *deadline) return false;
    if (progressed) {
      backoff.reset();
      continue;
    }
    if (chunks_out.load() == 0 && sends_.empty()) return done();  // nothing can change
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
      CommandHeader header{Command::kJob, 0, job->id_, job->runner_};
      send(rank->rank, &header, sizeof header, job->state_);
      job->ranks_told_.push_back(rank->rank);
    }
    CommandHeader header{Command::kChunk,  0,           job->id_,         0, chunk.index,
                         chunk.first_item, chunk.count, chunk.range_first};
    if (trace_) header.flags = kTraced;
    send(rank->rank, &header, sizeof header, chunk.items);
    chunk.items.clear();
    chunk.items.shrink_to_fit();
    ++job->in_flight_;
    chunks_out.fetch_add(1);
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
  MpiChunkTimes times;
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
  const MpiChunkInput input{chunk.first_item, chunk.count, chunk.range_first,
                            reinterpret_cast<const std::byte*>(chunk.items.data()),
                            chunk.items.size()};
  std::optional<TaskFailure> failure =
      trace_ ? call->second.run(input, payload, times.run) : call->second.run(input, payload);
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
  Session& state = session();
  bool received = false;
  for (;;) {
    handle_death_notices();
    MPI_Status status;
    int arrived = 0;
    check(MPI_Iprobe(MPI_ANY_SOURCE, kReply, state.comm, &arrived, &status), "MPI_Iprobe");
    if (!arrived) return received;
    received = true;
    const int source = status.MPI_SOURCE;
    TracedReply message;  // an untraced reply fills its header alone
    check(
        MPI_Recv(&message, sizeof message, MPI_BYTE, source, kReply, state.comm, MPI_STATUS_IGNORE),
        "MPI_Recv");
    const ReplyHeader& reply = message.header;
    MpiRank& rank = ranks_.at(static_cast<std::size_t>(source - 1));
    if (rank.in_flight.empty() || rank.in_flight.front().job->id_ != reply.job ||
        rank.in_flight.front().chunk.index != reply.chunk) {
      throw std::logic_error("pool::MpiPool: rank " + std::to_string(source) +
                             " answered a chunk it was not given");
    }
    MpiInFlight done = std::move(rank.in_flight.front());
    rank.in_flight.pop_front();
    --done.job->in_flight_;
    chunks_out.fetch_sub(1);
    MpiJob& job = *done.job;
    if (trace_ && (reply.flags & kTraced) != 0) {
      record_chunk(source - 1, job, done.chunk, message.times);
    }
    const std::size_t size = static_cast<std::size_t>(reply.payload_size);
    std::byte* destination =
        reply.status == Status::kDone && size > 0 ? job.destination(done.chunk, size) : nullptr;
    if (destination == nullptr) {
      buffer_.resize(size);
      destination = buffer_.data();
    }
    if (size > 0) {
      check(MPI_Recv(destination, checked_count(size), MPI_BYTE, source, kPayload, state.comm,
                     MPI_STATUS_IGNORE),
            "MPI_Recv");
    }
    if (reply.status == Status::kFailed) {
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
      CommandHeader header{Command::kDrop, 0, job.id_};
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
  check(MPI_Isend(message.bytes.data(), checked_count(message.bytes.size()), MPI_BYTE, rank,
                  kCommand, session().comm, &message.request),
        "MPI_Isend");
}

void MpiPoolCore::test_sends() {
  for (auto it = sends_.begin(); it != sends_.end();) {
    int done = 0;
    check(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    it = done ? sends_.erase(it) : std::next(it);
  }
}

void MpiPoolCore::wait_sends() {
  Backoff backoff;
  while (!sends_.empty()) {
    test_sends();
    if (!sends_.empty()) backoff.pause();
  }
}

void MpiPoolCore::handle_death_notices() {
  MPI_Status status;
  int arrived = 0;
  MPI_Iprobe(MPI_ANY_SOURCE, kDeath, session().comm, &arrived, &status);
  if (!arrived) return;
  DeathNotice notice;
  MPI_Recv(&notice, sizeof notice, MPI_BYTE, status.MPI_SOURCE, kDeath, session().comm,
           MPI_STATUS_IGNORE);
  std::string report =
      "pool::MpiPool: rank " + std::to_string(status.MPI_SOURCE) +
      (notice.signal_number == 0 ? std::string(" called exit()")
                                 : " died of " + signal_name(notice.signal_number));
  for (const MpiRank& rank : ranks_) {
    if (rank.rank != status.MPI_SOURCE || rank.in_flight.empty()) continue;
    const MpiInFlight& running = rank.in_flight.front();
    report += " while running " + std::string(running.job->name()) + " items " +
              std::to_string(running.chunk.first_item) + "-" +
              std::to_string(running.chunk.first_item +
                             static_cast<std::int64_t>(running.chunk.count) - 1);
  }
  report += ".\n" + lost_work() + "pool::MpiPool: aborting the MPI job.\n";
  write_all(report.c_str());
  MPI_Abort(MPI_COMM_WORLD, 1);
  _exit(1);
}

void MpiPoolCore::die_on_signal(int signal_number) {
  // A rank may have said why before it died.
  try {
    handle_death_notices();
  } catch (...) {
  }
  const std::string report = "pool::MpiPool: rank 0 received " + signal_name(signal_number) +
                             ": the MPI job is ending (a rank died or was killed, or the job was "
                             "cancelled).\n" +
                             lost_work();
  write_all(report.c_str());
  _exit(128 + signal_number);
}

std::string MpiPoolCore::lost_work() const {
  std::ostringstream out;
  out << "pool::MpiPool: lost:";
  bool any = false;
  for (const MpiRank& rank : ranks_) {
    for (const MpiInFlight& chunk : rank.in_flight) {
      out << (any ? "," : "") << " " << chunk.job->name() << " items " << chunk.chunk.first_item
          << "-" << chunk.chunk.first_item + static_cast<std::int64_t>(chunk.chunk.count) - 1
          << " on rank " << rank.rank;
      any = true;
    }
  }
  if (!any) out << " no chunk was running";
  out << ".\n";
  for (const auto& job : jobs_) {
    out << "pool::MpiPool: " << job->name() << ": " << job->items_done() << " items done";
    if (job->total()) out << " of " << *job->total();
    out << ".\n";
  }
  return out.str();
}

// ---------------------------------------------------------------------------------------------
// Rank 0: tracing.

// Each worker rank's clock offset (its CLOCK_MONOTONIC minus rank 0's), as NTP estimates one:
// rank 0 reads T0, asks the rank for its clock t, and reads T1 when t arrives. The rank read t
// at some instant of [T0, T1] on rank 0's clock, so offset = t - (T0 + T1) / 2 is off by at most
// (T1 - T0) / 2, half the round trip; of kClockRounds exchanges the shortest one is kept (the
// first may wake a rank from its idle backoff). On one node both read the same clock and the
// estimate is within a few microseconds of 0. Drift over a pool's life (a few ppm between nodes)
// is not corrected. A row is ready, its start-up over, when its rank's exchanges are done.
void MpiPoolCore::measure_clock_offsets() {
  Session& state = session();
  DriveScope scope;
  const auto check_ending = [this] {
    if (const int signal_number = termination_signal.load()) die_on_signal(signal_number);
    handle_death_notices();
  };
  const CommandHeader ask{Command::kReadClock};
  clock_offsets_.assign(ranks_.size(), 0);
  ready_ns_.assign(ranks_.size(), 0);
  for (std::size_t w = 0; w < ranks_.size(); ++w) {
    const int rank = ranks_[w].rank;
    std::int64_t shortest = std::numeric_limits<std::int64_t>::max();
    for (int round = 0; round < kClockRounds; ++round) {
      std::int64_t theirs = 0;
      std::int64_t answered = 0;
      std::vector<MPI_Request> requests(2, MPI_REQUEST_NULL);
      check(MPI_Irecv(&theirs, sizeof theirs, MPI_BYTE, rank, kClock, state.comm, &requests[0]),
            "MPI_Irecv");
      const std::int64_t asked = monotonic_now_ns();
      check(MPI_Isend(&ask, sizeof ask, MPI_BYTE, rank, kCommand, state.comm, &requests[1]),
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
                               const MpiChunkTimes& times) {
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
    Session& state = session();
    DriveScope scope;
    const CommandHeader ask{Command::kReadClock};
    std::vector<std::int64_t> clocks(ranks_.size());
    std::vector<MPI_Request> requests(2 * ranks_.size(), MPI_REQUEST_NULL);
    for (std::size_t w = 0; w < ranks_.size(); ++w) {
      check(MPI_Irecv(&clocks[w], sizeof clocks[w], MPI_BYTE, ranks_[w].rank, kClock, state.comm,
                      &requests[2 * w]),
            "MPI_Irecv");
      check(MPI_Isend(&ask, sizeof ask, MPI_BYTE, ranks_[w].rank, kCommand, state.comm,
                      &requests[2 * w + 1]),
            "MPI_Isend");
    }
    wait_all(
        requests,
        [&](std::size_t i) {
          if (i % 2 == 0) trace_->worker_ended(static_cast<int>(i / 2), monotonic_now_ns());
        },
        [this] {
          if (const int signal_number = termination_signal.load()) die_on_signal(signal_number);
          handle_death_notices();
        });
  }
  trace_->finish();
  trace_.reset();
}

}  // namespace pool::detail
