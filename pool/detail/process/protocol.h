// The shared memory a process pool's parent and its workers work through: a ring of job slots,
// each with its own chunk cursor and completion count, and per-worker progress. Nothing but
// wake-ups and segment hand-overs goes over the workers' sockets (see message.h).
//
// Jobs are numbered in posting order ("positions"); job p lives in slot p % kJobSlots. Every
// worker visits the jobs in order, taking chunks from each until none are left, and publishes the
// position it is at; the parent reuses a slot only after every live worker has moved past it.
#ifndef POOL_DETAIL_PROCESS_PROTOCOL_H_
#define POOL_DETAIL_PROCESS_PROTOCOL_H_

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "pool/detail/process/chunk_shares.h"

namespace pool::detail {

class WorkerContext;

inline constexpr std::size_t kJobSlots = 256;

// Describes one call (map, one imap batch, apply_async, ...). Offsets are into the arena; 0 means
// absent (the arena's allocator header sits at offset 0).
struct JobDescriptor {
  // Runs the job's chunks in a worker, starting with `first_chunk`, already taken. An
  // instantiation of a job template, at its address in the parent: valid as it is in a fork,
  // translated by a worker that is not one (code_map.h).
  void (*runner)(WorkerContext&, std::uint64_t first_chunk) = nullptr;
  std::uint64_t n_items = 0;
  std::uint64_t chunksize = 1;
  std::uint64_t n_chunks = 0;
  std::int64_t range_first = 0;       // first value of a pool::range input
  std::int64_t index_base = 0;        // input index of the job's first item (imap batches)
  std::uint64_t function_offset = 0;  // the encoded task function
  std::uint64_t function_size = 0;
  std::uint64_t op_offset = 0;  // reduce jobs: the encoded reduce op and initial value
  std::uint64_t op_size = 0;
  std::uint64_t init_offset = 0;
  std::uint64_t init_size = 0;
  std::uint64_t arg_index_offset = 0;  // n_chunks + 1 offsets of encoded chunk arguments
  std::uint64_t result_offset = 0;     // trivially copyable results, one slot per result
  std::uint64_t record_offset = 0;     // one ChunkRecord per chunk for serialized results
  std::uint64_t log_offset = 0;        // one std::atomic<uint32_t> per chunk: completion order
  std::uint64_t failure_offset = 0;    // one WorkerFailure per worker
  // Chunks are handed out from per-worker shares (chunk_shares.h, in the job's slot), not the
  // slot's cursor.
  std::uint32_t shared_out = 0;
  std::uint32_t notify_each_chunk = 0;  // wake a sleeping parent at every chunk, not just the last
  // Trivially copyable results stay in the workers' own warm memory; each chunk's ChunkRecord
  // says where, and the parent pulls them with process_vm_readv (see pulled_results.h).
  std::uint32_t pulled_results = 0;
  // A retry of lost chunks: n_chunks entries (std::uint32_t) naming the original chunks to run,
  // which keep their numbers (their inputs, result slots, records and log entries).
  std::uint64_t chunk_map_offset = 0;
  // Workers that are not forks (Start::spawn, forkserver): the task function's typeid name, for
  // the error when a worker lacks the runner's code.
  std::uint64_t task_type_offset = 0;
  std::uint64_t task_type_size = 0;
};

// A completion log entry: chunk + 1, with this bit when the chunk's task threw.
inline constexpr std::uint32_t kChunkFailedBit = 1u << 31;
inline constexpr std::uint64_t kMaxLoggedChunks = kChunkFailedBit - 1;

// Where a worker serialized one chunk's results: a span of its result buffer, or for pulled
// results an address in the worker process `pid`.
struct ChunkRecord {
  std::uint32_t worker;
  std::uint32_t state;  // kRecordWritten, then kRecordRead once the parent decoded it
  std::uint64_t offset;
  std::uint64_t size;
  std::int64_t pid;
};

inline constexpr std::uint32_t kRecordWritten = 1;
inline constexpr std::uint32_t kRecordRead = 2;

// A task that threw in this job: the chunk, and the encoded TaskFailure in the worker's result
// buffer. A worker leaves a job at its first failure, so one per worker suffices.
struct WorkerFailure {
  std::atomic<std::uint64_t> chunk_plus_one;  // 0: none
  std::uint64_t offset;
  std::uint64_t size;
};

struct alignas(64) JobSlot {
  JobDescriptor job;
  alignas(64) std::atomic<std::uint64_t> next_chunk{0};
  alignas(64) std::atomic<std::uint64_t> log_cursor{0};  // reserves completion log entries
  std::atomic<std::uint64_t> completed{0};  // chunks finished, counted after their log entry
  std::atomic<std::uint32_t> cancelled{0};
  // kWorkerEntered once a worker entered the job; kCancelledBeforeStart when the caller cancelled
  // it first (one word: whichever came first wins).
  std::atomic<std::uint32_t> entered{0};
  // The lowest chunk whose task threw (kNoFailureFloor: none): with shares, chunks below it run.
  std::atomic<std::uint64_t> failure_floor{kNoFailureFloor};
};

inline constexpr std::uint32_t kWorkerEntered = 1;
inline constexpr std::uint32_t kCancelledBeforeStart = 2;

// What a worker is doing, for the parent to attribute a death or a timeout.
inline constexpr std::int64_t kNoItem = -1;
inline constexpr std::int64_t kTakingChunk = -2;  // between the cursor and the first item

inline constexpr std::size_t kMaxCrashFrames = 48;

inline constexpr std::uint32_t kInitializing = 0;
inline constexpr std::uint32_t kStarted = 1;
inline constexpr std::uint32_t kInitializerFailed = 2;

struct alignas(64) WorkerSlot {
  std::atomic<std::uint64_t> position{0};  // the job the worker is in, or will look at next
  std::atomic<std::int64_t> current_item{kNoItem};
  std::atomic<std::int64_t> item_started_ns{0};  // CLOCK_MONOTONIC, when task timeouts are on
  std::atomic<std::uint32_t> sleeping{0};        // blocked on its socket, waiting for kWake
  // Serialized results and failure records in the worker's result buffer: the worker starts
  // again at the buffer's beginning when the parent has consumed all it produced.
  std::atomic<std::uint64_t> records_produced{0};
  std::atomic<std::uint64_t> records_consumed{0};
  std::atomic<std::uint64_t> records_end{0};  // where the last record ends, for a replacement
  // The initializer's outcome, in shared memory so that a death right after it cannot hide it.
  std::atomic<std::uint32_t> started{kInitializing};
  std::uint64_t init_failure_offset = 0;  // the encoded failure in the result buffer
  std::uint64_t init_failure_size = 0;
  // A crash's raw stack (crash_stack.h): crash_frames return addresses, written by the dying
  // worker.
  std::atomic<std::uint32_t> crash_frames{0};
  void* crash_stack[kMaxCrashFrames];
};

// What wakes a sleeping parent: job-level events always; every worker move when it waits for one.
inline constexpr std::uint32_t kParentAwake = 0;
inline constexpr std::uint32_t kParentWaitsForJobs = 1;
inline constexpr std::uint32_t kParentWaitsForWorkers = 2;

struct ControlBlock {
  alignas(64) std::atomic<std::uint64_t> posted{0};  // jobs [0, posted) are published
  alignas(64) std::atomic<std::uint32_t> parent_sleeping{kParentAwake};
  std::int64_t task_timeout_ns = 0;         // 0: tasks are not timed
  std::uint64_t max_chunks_per_worker = 0;  // maxtasksperchild; 0: unlimited
  std::uint64_t max_resident_bytes = 0;     // max_memory_per_child; 0: unlimited
  std::uint64_t workers = 0;
  std::uint32_t capture_output = 0;  // workers prefix and write whole lines under output_lock
  pthread_mutex_t output_lock;
  // The job slots, each constructed when a job is posted in it (post_slot): a new pool writes
  // none of them, so its first call faults in one page of them, not all 256 slots' (80 KiB).
  alignas(JobSlot) std::byte job_storage[kJobSlots * sizeof(JobSlot)];
  // WorkerSlot[workers] follows, at slots_offset(), then ChunkShare[kJobSlots][workers]: a job's
  // shares live as long as its slot, until every worker has left the job (its arena region is
  // freed as soon as its chunks are done, while a worker may still be looking for one).

  static constexpr std::size_t slots_offset() {
    return (sizeof(ControlBlock) + alignof(WorkerSlot) - 1) / alignof(WorkerSlot) *
           alignof(WorkerSlot);
  }
  static constexpr std::size_t bytes_for(std::size_t workers) {
    return slots_offset() + workers * sizeof(WorkerSlot) + kJobSlots * workers * sizeof(ChunkShare);
  }
  WorkerSlot* slots() {
    return reinterpret_cast<WorkerSlot*>(reinterpret_cast<std::byte*>(this) + slots_offset());
  }
  JobSlot& slot_of(std::uint64_t position) {
    return *std::launder(reinterpret_cast<JobSlot*>(job_storage) + position % kJobSlots);
  }
  // Starts the slot of the job at `position` afresh; by then every worker has left its last job.
  JobSlot& post_slot(std::uint64_t position) {
    return *::new (job_storage + position % kJobSlots * sizeof(JobSlot)) JobSlot;
  }
  // The `workers` shares of the job at `position` (pages untouched until a job uses them).
  ChunkShare* shares_of(std::uint64_t position) {
    return reinterpret_cast<ChunkShare*>(slots() + workers) + (position % kJobSlots) * workers;
  }
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<std::int64_t>::is_always_lock_free &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "cross-process atomics must be lock-free");

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_PROTOCOL_H_
