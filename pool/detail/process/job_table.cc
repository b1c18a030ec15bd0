// The job table: posted jobs from their posting until no worker touches them, the chunks and
// failures the workers report in shared memory, and each job's listener settled exactly once.
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "pool/detail/process/core.h"
#include "pool/detail/process/pulled_results.h"
#include "pool/detail/serialization.h"
#include "pool/errors.h"

namespace pool::detail {
namespace {

std::exception_ptr not_running(const char* why) {
  return std::make_exception_ptr(PoolNotRunning(why));
}

}  // namespace

std::uint64_t ProcessPoolCore::post(const JobDescriptor& job, std::uint64_t region,
                                    std::shared_ptr<JobListener> listener, Lifecycle::State latest,
                                    RetryPlan retry) {
  if (!live_.empty() && posted_ - live_.front().position >= kJobSlots) {
    drive_until(
        [this] {
          return live_.empty() || posted_ - live_.front().position < kJobSlots ||
                 lifecycle_.state() >= Lifecycle::State::kStopped || broken_;
        },
        std::nullopt);
  }
  try {
    check_can_submit(latest);
  } catch (...) {
    arena_.free(region);
    throw;
  }
  if (job.record_offset != 0)
    std::memset(arena_.data() + job.record_offset, 0, job.n_chunks * sizeof(ChunkRecord));
  LiveJob live;
  live.job = job;
  live.region = region;
  live.listener = std::move(listener);
  live.retry = retry;
  return publish(std::move(live));
}

std::uint64_t ProcessPoolCore::publish(LiveJob live) {
  const std::uint64_t position = posted_;
  const JobDescriptor& job = live.job;
  std::byte* base = arena_.data();
  if (job.log_offset != 0)
    std::memset(base + job.log_offset, 0, job.n_chunks * sizeof(std::uint32_t));
  auto* failures = reinterpret_cast<WorkerFailure*>(base + job.failure_offset);
  for (std::size_t w = 0; w < workers_.size(); ++w) new (failures + w) WorkerFailure{{0}, 0, 0};
  JobSlot& slot = control_->post_slot(position);  // every counter and flag at its start
  slot.job = job;
  if (job.shared_out != 0) {
    init_chunk_shares(control_->shares_of(position), control_->workers, job.n_chunks);
  }
  live.position = position;
  live_.push_back(std::move(live));
  control_->posted.store(++posted_, std::memory_order_seq_cst);
  wake_workers();
  retry_vacant_slots();
  return position;
}

bool ProcessPoolCore::retry_lost_chunks(LiveJob& job) {
  if (!live_.empty() && posted_ - live_.front().position >= kJobSlots) return false;
  std::byte* base = arena_.data();
  const JobDescriptor& lost = job.job;
  // Every worker has left the job: its log holds every chunk that finished.
  std::vector<char> finished(job.retry.chunks, 0);
  const auto* log = reinterpret_cast<const std::atomic<std::uint32_t>*>(base + lost.log_offset);
  for (std::uint64_t i = 0; i < lost.n_chunks; ++i) {
    const std::uint32_t entry = log[i].load(std::memory_order_acquire);
    if (entry == 0) break;
    finished[(entry & ~kChunkFailedBit) - 1] = 1;
  }
  std::vector<std::uint32_t> again;
  const auto* map = reinterpret_cast<const std::uint32_t*>(base + lost.chunk_map_offset);
  for (std::uint64_t i = 0; i < lost.n_chunks; ++i) {
    const auto chunk = static_cast<std::uint32_t>(lost.chunk_map_offset != 0 ? map[i] : i);
    if (finished[chunk] == 0) again.push_back(chunk);
  }
  if (again.empty()) {  // the worker died after its last chunk was logged
    settle(job, lowest_failure(job));
    return true;
  }
  std::memcpy(base + job.retry.map_offset, again.data(), again.size() * sizeof(std::uint32_t));
  JobDescriptor retry = lost;
  retry.n_chunks = again.size();
  retry.chunk_map_offset = job.retry.map_offset;
  retry.log_offset = job.retry.log_offset;
  retry.failure_offset = job.retry.failure_offset;
  retry.shared_out = 0;
  LiveJob next;
  next.job = retry;
  next.region = job.region;
  next.listener = std::move(job.listener);
  next.retry = job.retry;
  next.attempt = job.attempt + 1;
  // The lost attempt hands everything over: nothing of it is settled, released or freed.
  job.region = 0;
  job.settled = true;
  publish(std::move(next));
  return true;
}

std::string ProcessPoolCore::attempts_note(std::uint32_t index) {
  const LiveJob* job = find_job(control_->slots()[index].position.load(std::memory_order_acquire));
  if (job == nullptr || job->settled || job->retry.retries == 0 ||
      job->attempt <= job->retry.retries) {
    return {};
  }
  return "the chunk was lost on each of " + std::to_string(job->attempt) +
         " attempts (retries = " + std::to_string(job->retry.retries) + ")";
}

ProcessPoolCore::LiveJob* ProcessPoolCore::find_job(std::uint64_t position) {
  if (live_.empty() || position < live_.front().position || position >= posted_) return nullptr;
  return &live_[position - live_.front().position];
}

void ProcessPoolCore::cancel(std::uint64_t position) {
  LiveJob* job = find_job(position);
  if (job == nullptr || job->settled) return;
  stop_job(*job, not_running("pool: the call was cancelled"));
}

bool ProcessPoolCore::cancel_call(std::uint64_t position, Cancel how) {
  check_caller();
  LiveJob* job = find_job(position);
  if (job == nullptr || job->settled) return false;
  JobSlot& slot = control_->slot_of(position);
  std::uint32_t entered = 0;
  const bool untouched = slot.entered.compare_exchange_strong(entered, kCancelledBeforeStart,
                                                              std::memory_order_seq_cst);
  if (!untouched && how != Cancel::kill_running) return false;
  stop_job(*job, cancelled_error());
  if (!untouched) {
    for (std::uint32_t i = 0; i < workers_.size(); ++i) {
      const WorkerSlot& worker = control_->slots()[i];
      if (workers_[i].alive && worker.position.load(std::memory_order_seq_cst) == position &&
          worker.current_item.load(std::memory_order_seq_cst) != kNoItem) {
        stop_worker(i, cancelled_error());
      }
    }
  }
  return true;
}

void ProcessPoolCore::fail_job_of_worker(std::uint32_t index, std::exception_ptr error,
                                         bool retryable) {
  const std::uint64_t position = control_->slots()[index].position.load(std::memory_order_acquire);
  LiveJob* job = find_job(position);
  if (job == nullptr || job->settled) return;
  JobSlot& slot = control_->slot_of(position);
  if (slot.completed.load(std::memory_order_acquire) == job->job.n_chunks) return;
  if (retryable && job->attempt <= job->retry.retries) {
    // The other workers go on; collect() runs what was lost once they have left the job.
    if (!job->lost) job->lost = std::move(error);
    return;
  }
  // Reported at once; the job's memory stays until the other workers have left it.
  stop_job(*job, std::move(error));
}

bool ProcessPoolCore::all_workers_past(std::uint64_t position) {
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    if (workers_[i].alive &&
        control_->slots()[i].position.load(std::memory_order_seq_cst) <= position) {
      return false;
    }
  }
  return true;
}

TaskFailure ProcessPoolCore::read_failure(std::uint32_t worker, std::uint64_t offset,
                                          std::uint64_t size) const {
  return Decoder<TaskFailure>(results_of(worker, offset, size), size).next();
}

std::exception_ptr ProcessPoolCore::failure_of_chunk(LiveJob& job, std::uint64_t chunk) {
  auto* failures = reinterpret_cast<WorkerFailure*>(arena_.data() + job.job.failure_offset);
  for (std::uint32_t w = 0; w < workers_.size(); ++w) {
    if (failures[w].chunk_plus_one.load(std::memory_order_acquire) != chunk + 1) continue;
    return std::make_exception_ptr(
        read_failure(w, failures[w].offset, failures[w].size).to_error());
  }
  return std::make_exception_ptr(std::runtime_error("pool: a failed chunk left no failure record"));
}

std::exception_ptr ProcessPoolCore::lowest_failure(LiveJob& job) {
  auto* failures = reinterpret_cast<WorkerFailure*>(arena_.data() + job.job.failure_offset);
  LowestFailure lowest;
  for (std::uint32_t w = 0; w < workers_.size(); ++w) {
    if (failures[w].chunk_plus_one.load(std::memory_order_acquire) == 0) continue;
    lowest.add(read_failure(w, failures[w].offset, failures[w].size));
  }
  return lowest.error();
}

void ProcessPoolCore::stop_job(LiveJob& job, std::exception_ptr error) {
  job.failed = true;
  control_->slot_of(job.position).cancelled.store(1, std::memory_order_seq_cst);
  settle(job, std::move(error));
}

void ProcessPoolCore::settle(LiveJob& job, std::exception_ptr error) {
  if (job.settled) return;
  job.settled = true;
  // A copy: the listener may be dropped while it runs (terminate from a callback).
  std::shared_ptr<JobListener> listener = job.listener;
  if (listener) listener->on_settled(error);
}

void ProcessPoolCore::collect() {
  std::vector<std::uint64_t> lost_jobs;
  for (LiveJob& job : live_) {
    if (job.region == 0) continue;  // retired; waits for the workers to move past its slot
    JobSlot& slot = control_->slot_of(job.position);
    const std::uint64_t completed = slot.completed.load(std::memory_order_acquire);
    // Read before the log: a worker writes its entries before it moves past the job.
    const bool past = all_workers_past(job.position);
    // Chunks finished after a failure are still reported: a stream yields them before it.
    if (job.job.log_offset != 0) {
      auto* log = reinterpret_cast<std::atomic<std::uint32_t>*>(arena_.data() + job.job.log_offset);
      while (job.logged < job.job.n_chunks && job.listener) {
        const std::uint32_t entry = log[job.logged].load(std::memory_order_acquire);
        if (entry == 0) break;
        ++job.logged;
        const std::uint64_t chunk = (entry & ~kChunkFailedBit) - 1;
        const bool failed = (entry & kChunkFailedBit) != 0;
        job.listener->on_chunk(chunk, failed ? failure_of_chunk(job, chunk) : nullptr);
      }
    }
    const bool all_done = completed == job.job.n_chunks;
    if (!job.settled) {
      if (all_done) {
        settle(job, lowest_failure(job));
      } else if (slot.cancelled.load(std::memory_order_seq_cst) != 0 && past) {
        std::exception_ptr error = lowest_failure(job);
        settle(job, error ? error : not_running("pool: the call was cancelled"));
      } else if (job.lost && past) {
        lost_jobs.push_back(job.position);
      }
    }
    if (job.settled && (all_done || past)) {
      // Records nobody decoded (a failed or cancelled call) are released with the job.
      if (job.job.record_offset != 0) {
        auto* records = reinterpret_cast<ChunkRecord*>(arena_.data() + job.job.record_offset);
        for (std::uint64_t c = 0; c < job.job.n_chunks; ++c) {
          if (records[c].state == kRecordWritten) release_record(records[c].worker);
        }
      }
      auto* failures = reinterpret_cast<WorkerFailure*>(arena_.data() + job.job.failure_offset);
      for (std::uint32_t w = 0; w < workers_.size(); ++w) {
        if (failures[w].chunk_plus_one.load(std::memory_order_acquire) != 0) release_record(w);
      }
      arena_.free(job.region);
      job.region = 0;
      if (std::shared_ptr<JobListener> listener = std::move(job.listener)) listener->on_retired();
    }
  }
  // (After the loop: a retry is a new job at the end of live_.)
  for (std::uint64_t position : lost_jobs) {
    if (!retry_lost_chunks(*find_job(position))) break;  // a later collect() posts the rest
  }
  while (!live_.empty() && live_.front().region == 0 && all_workers_past(live_.front().position)) {
    live_.pop_front();
  }
}

void ProcessPoolCore::pull(const ChunkRecord& record, std::uint64_t from, std::byte* into,
                           std::size_t size) {
  const auto pid = static_cast<pid_t>(record.pid);
  Worker* worker = record.worker < workers_.size() ? &workers_[record.worker] : nullptr;
  const bool same = worker != nullptr && worker->pid == pid;
  const int error =
      same && worker->alive ? pull_bytes(pid, record.offset + from, into, size) : ESRCH;
  if (error == 0) return;
  if (error != ESRCH) {
    throw std::system_error(error, std::generic_category(),
                            "pool: could not read a chunk's results from its worker");
  }
  int status = 0;
  if (worker != nullptr && worker->ended_pid == pid) {
    status = worker->ended_status;
  } else if (same) {
    // Its memory is gone: it is ending, not yet reaped. Its status, leaving it to the reaper.
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) == 0) {
      status = info.si_code == CLD_EXITED ? W_EXITCODE(info.si_status, 0) : info.si_status;
    }
  }
  throw WorkerDied(WorkerDied::kNoTask, pid, status,
                   "it had finished a chunk whose results were still in its memory");
}

std::byte* ProcessPoolCore::staging(std::size_t bytes, std::size_t alignment) {
  if (alignment > alignof(StagingBlock)) {
    throw std::logic_error("pool: results aligned beyond 64 bytes cannot be pulled");
  }
  if (staging_.size() * sizeof(StagingBlock) < bytes) {
    staging_.resize((bytes + sizeof(StagingBlock) - 1) / sizeof(StagingBlock));
  }
  return staging_.front().bytes;
}

void ProcessPoolCore::release_record(std::uint32_t worker) {
  control_->slots()[worker].records_consumed.fetch_add(1, std::memory_order_release);
}

void ProcessPoolCore::fail_everything(const std::exception_ptr& error) {
  for (LiveJob& job : live_) {
    if (!job.settled) stop_job(job, error);
  }
}

}  // namespace pool::detail
