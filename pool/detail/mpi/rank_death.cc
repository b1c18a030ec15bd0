#include "pool/detail/mpi/rank_death.h"

#include <mpi.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <sstream>
#include <string>

#include "pool/detail/mpi/messages.h"
#include "pool/detail/mpi/pool_core.h"
#include "pool/detail/mpi/session.h"

namespace pool::detail {

// ---------------------------------------------------------------------------------------------
// The SIGTERM handler.

namespace mpi {

namespace {

std::atomic<int> received_signal{0};
std::atomic<bool> in_drive{false};
std::atomic<std::uint64_t> chunks_out_now{0};
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
    received_signal.store(signal_number);
    return;
  }
  char digits[24];
  std::uint64_t value = chunks_out_now.load();
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

std::string signal_name(int signal_number) {
  const char* text = strsignal(signal_number);
  return "signal " + std::to_string(signal_number) + " (" + (text ? text : "?") + ")";
}

}  // namespace

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

int termination_signal() { return received_signal.load(); }

DriveScope::DriveScope() : outer_(in_drive.exchange(true)) {}
DriveScope::~DriveScope() { in_drive.store(outer_); }

void count_chunk_sent() { chunks_out_now.fetch_add(1); }
void count_chunk_answered() { chunks_out_now.fetch_sub(1); }
std::uint64_t chunks_out() { return chunks_out_now.load(); }

}  // namespace mpi

// ---------------------------------------------------------------------------------------------
// The reports.

namespace {

// "map items 35-39".
std::string chunk_text(const MpiInFlight& chunk) {
  return std::string(chunk.job->name()) + " items " + std::to_string(chunk.chunk.first_item) + "-" +
         std::to_string(chunk.chunk.first_item + static_cast<std::int64_t>(chunk.chunk.count) - 1);
}

}  // namespace

void MpiPoolCore::abort_job(const std::string& why) {
  const std::string report = why + ".\n" + lost_work() + "pool::MpiPool: aborting the MPI job.\n";
  mpi::write_all(report.c_str());
  MPI_Abort(MPI_COMM_WORLD, 1);
  _exit(1);
}

void MpiPoolCore::handle_death_notices() {
  MPI_Status status;
  int arrived = 0;
  MPI_Iprobe(MPI_ANY_SOURCE, mpi::kDeath, mpi::session().comm, &arrived, &status);
  if (!arrived) return;
  mpi::DeathNotice notice;
  MPI_Recv(&notice, sizeof notice, MPI_BYTE, status.MPI_SOURCE, mpi::kDeath, mpi::session().comm,
           MPI_STATUS_IGNORE);
  std::string report =
      "pool::MpiPool: rank " + std::to_string(status.MPI_SOURCE) +
      (notice.signal_number == 0 ? std::string(" called exit()")
                                 : " died of " + mpi::signal_name(notice.signal_number));
  for (const MpiRank& rank : ranks_) {
    if (rank.rank != status.MPI_SOURCE || rank.in_flight.empty()) continue;
    report += " while running " + chunk_text(rank.in_flight.front());
  }
  abort_job(report);
}

void MpiPoolCore::check_silent_ranks() {
  const Clock::time_point now = Clock::now();
  for (const MpiRank& rank : ranks_) {
    if (rank.in_flight.empty() || now - rank.front_since <= task_timeout_) continue;
    std::ostringstream why;
    why << "pool::MpiPool: rank " << rank.rank << " answered nothing for "
        << std::chrono::duration<double>(task_timeout_).count()
        << " s (task_timeout) while running " << chunk_text(rank.in_flight.front())
        << ": a hung task, or its node lost";
    abort_job(why.str());
  }
}

void MpiPoolCore::die_on_signal(int signal_number) {
  // A rank may have said why before it died.
  try {
    handle_death_notices();
  } catch (...) {
  }
  const std::string report = "pool::MpiPool: rank 0 received " + mpi::signal_name(signal_number) +
                             ": the MPI job is ending (a rank died or was killed, or the job was "
                             "cancelled).\n" +
                             lost_work();
  mpi::write_all(report.c_str());
  _exit(128 + signal_number);
}

std::string MpiPoolCore::lost_work() const {
  std::ostringstream out;
  out << "pool::MpiPool: lost:";
  bool any = false;
  for (const MpiRank& rank : ranks_) {
    for (const MpiInFlight& chunk : rank.in_flight) {
      out << (any ? "," : "") << " " << chunk_text(chunk) << " on rank " << rank.rank;
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

}  // namespace pool::detail
