#include "pool/detail/process/worker_main.h"

#include <unistd.h>

#include <cereal/archives/binary.hpp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <ostream>
#include <string_view>
#include <utility>

#include "pool/detail/output_capture.h"
#include "pool/detail/process/crash_stack.h"
#include "pool/detail/process/message.h"
#include "pool/detail/process/worker_context.h"
#include "pool/detail/shared_block.h"
#include "pool/detail/task_failure.h"
#include "pool/detail/throw_site.h"

namespace pool::detail {
namespace {

// Wakes the parent through the worker's socket, only when the parent said it sleeps.
class WorkerLink final : public ParentLink {
 public:
  WorkerLink(ControlBlock* control, std::uint32_t index, int fd)
      : control_(control), index_(index), fd_(fd) {}

  void notify(bool job_level_event) override {
    const std::uint32_t level = control_->parent_sleeping.load(std::memory_order_seq_cst);
    if (level == kParentAwake || (!job_level_event && level != kParentWaitsForWorkers)) return;
    if (control_->parent_sleeping.exchange(kParentAwake) != kParentAwake) {
      if (!write_message(fd_, make_message(MessageType::kProgress, index_))) ::_exit(0);
    }
  }

 private:
  ControlBlock* control_;
  std::uint32_t index_;
  int fd_;
};

using Runner = void (*)(WorkerContext&, std::uint64_t);

// The job's runner in this process: the pool's address as it is in a fork, translated otherwise.
// Null, with the chunk failed, when its code is not here.
Runner local_runner(Runner runner, WorkerContext& context, std::uint64_t chunk) {
  const CodeMap* map = context.code_map();
  if (map == nullptr) return runner;
  const JobDescriptor& job = context.job();
  const std::string_view task_type(
      reinterpret_cast<const char*>(context.arena() + job.task_type_offset),
      job.task_type_offset != 0 ? job.task_type_size : 0);
  try {
    return reinterpret_cast<Runner>(
        const_cast<void*>(map->to_local(reinterpret_cast<const void*>(runner), task_type)));
  } catch (...) {
    context.fail_chunk(chunk, std::current_exception());
    return nullptr;
  }
}

class WorkerLoop {
 public:
  explicit WorkerLoop(const WorkerSetup& setup) : setup_(setup) {}

  [[noreturn]] void serve();

 private:
  void run_initializer(ResultBuffer& results);
  void grow_results(std::size_t bytes, ResultBuffer& buffer);

  const WorkerSetup& setup_;
};

// Function: serve
void WorkerLoop::serve() {
  const std::uint32_t index = setup_.index;
  const int fd = setup_.fd;
  ControlBlock* const control = setup_.control;
  TraceBuffer* const trace = setup_.trace;
  int exit_code = 0;
  try {
    WorkerSlot& me = control->slots()[index];
    std::byte* arena = setup_.arena;
    SharedSegment mapped_arena;  // the arena, once it was replaced after this fork
    ResultBuffer results([&](std::size_t bytes) { grow_results(bytes, results); });
    PulledResults pulled;
    // Records of a dead predecessor that the parent has not read yet stay where they are.
    const bool unread = me.records_produced.load() != me.records_consumed.load();
    results.reset(setup_.results->data(), setup_.results->size(),
                  unread ? me.records_end.load() : 0);
    setup_.pinning->pin(static_cast<int>(index));
    if (control->capture_output != 0) {
      capture_process_output(static_cast<int>(index), &me.current_item, &control->output_lock);
      t_output_trace = trace;
    }
    record_throw_sites();
    record_crash_stacks(&me, setup_.code_map);
    if (*setup_.initializer) {
      run_initializer(results);
    } else {
      me.started.store(kStarted, std::memory_order_release);
    }
    SpanRecorder recorder(trace);
    if (trace != nullptr) {
      trace->record(TraceKind::kStartup, setup_.startup_ns, monotonic_now_ns(), -1, -1, -1, 0);
    }
    WorkerLink link(control, index, fd);
    std::uint64_t chunks_left = control->max_chunks_per_worker != 0
                                    ? control->max_chunks_per_worker
                                    : std::numeric_limits<std::uint64_t>::max();
    MemoryGuard memory(control->max_resident_bytes);
    std::uint64_t position = me.position.load(std::memory_order_acquire);
    Message message{};
    for (;;) {
      if (position < control->posted.load(std::memory_order_acquire)) {
        JobSlot& job = control->slot_of(position);
        WorkerContext context(control, &job, index, arena, &results, &pulled, &link, &chunks_left,
                              &memory, &recorder, position, setup_.code_map);
        std::uint64_t chunk = 0;
        recorder.start_overhead();
        // A job the caller cancelled before any worker entered it is skipped whole.
        const bool dropped = (job.entered.fetch_or(kWorkerEntered, std::memory_order_seq_cst) &
                              kCancelledBeforeStart) != 0;
        if (!dropped && context.next_chunk(chunk)) {
          if (Runner runner = local_runner(job.job.runner, context, chunk)) {
            runner(context, chunk);
          }
          recorder.idle();
        }
        // maxtasksperchild or max_memory_per_child: the parent starts a replacement.
        if (chunks_left == 0) break;
        me.position.store(++position, std::memory_order_seq_cst);
        // The parent may be waiting for every worker to leave a cancelled job.
        link.notify(job.cancelled.load(std::memory_order_seq_cst) != 0);
        continue;
      }
      me.sleeping.store(1, std::memory_order_seq_cst);
      if (position < control->posted.load(std::memory_order_seq_cst)) {
        me.sleeping.store(0, std::memory_order_relaxed);  // a kWake may follow: it is harmless
        continue;
      }
      // Shared arrays destroyed since the worker last went idle or woke are unmapped here.
      release_dead_blocks();
      int passed = -1;
      if (!read_message(fd, message, &passed)) break;  // EOF: the pool is closing
      me.sleeping.store(0, std::memory_order_relaxed);
      release_dead_blocks();
      switch (message.type) {
        case MessageType::kWake:
          if (passed >= 0) ::_exit(3);
          break;
        case MessageType::kMapArena:
          if (passed < 0) ::_exit(3);
          mapped_arena = SharedSegment::adopt(passed, message.a);
          arena = mapped_arena.data();
          if (!write_message(fd, make_message(MessageType::kMapped, index))) ::_exit(0);
          break;
        default:
          ::_exit(3);
      }
    }
  } catch (...) {
    exit_code = 70;  // EX_SOFTWARE: the parent reports it as a dead worker
  }
  if (trace != nullptr) trace->mark_stopped();
  flush_captured_output();
  ::_exit(exit_code);
}

// Function: run_initializer
void WorkerLoop::run_initializer(ResultBuffer& results) {
  WorkerSlot& me = setup_.control->slots()[setup_.index];
  try {
    (*setup_.initializer)();
  } catch (...) {
    const TaskFailure failure = TaskFailure::capture(-1, std::current_exception());
    const std::size_t start = results.position();
    {
      cereal::BinaryOutputArchive archive(results.stream());
      archive(failure);
    }
    me.init_failure_offset = start;
    me.init_failure_size = results.position() - start;
    me.started.store(kInitializerFailed, std::memory_order_release);
    write_message(setup_.fd, make_message(MessageType::kInitFailed, setup_.index));
    std::fflush(nullptr);
    ::_exit(0);
  }
  me.started.store(kStarted, std::memory_order_release);
  if (!write_message(setup_.fd, make_message(MessageType::kReady, setup_.index))) ::_exit(0);
}

// Function: grow_results
// The parent hands over a larger segment; the results written so far move into it.
void WorkerLoop::grow_results(std::size_t bytes, ResultBuffer& buffer) {
  const int fd = setup_.fd;
  if (!write_message(fd, make_message(MessageType::kNeedSpill, setup_.index, 0, bytes))) {
    ::_exit(0);
  }
  Message reply{};
  int passed = -1;
  do {
    if (!read_message(fd, reply, &passed)) ::_exit(0);
  } while (reply.type == MessageType::kWake);  // a wake-up sent before the parent saw the request
  if (reply.type != MessageType::kMapSpill || reply.a < bytes || passed < 0) ::_exit(3);
  SharedSegment larger = SharedSegment::adopt(passed, reply.a);
  const std::size_t used = buffer.position();
  SharedSegment& results = *setup_.results;
  std::memcpy(larger.data(), results.data(), used);
  results = std::move(larger);
  buffer.reset(results.data(), results.size(), used);
  if (!write_message(fd, make_message(MessageType::kMapped, setup_.index))) ::_exit(0);
}

}  // namespace

void worker_main(const WorkerSetup& setup) { WorkerLoop(setup).serve(); }

}  // namespace pool::detail
