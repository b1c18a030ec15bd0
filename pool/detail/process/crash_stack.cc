#include "pool/detail/process/crash_stack.h"

#include <signal.h>

#include <algorithm>
#include <cstddef>

#define BOOST_STACKTRACE_LINK
#include <boost/stacktrace/safe_dump_to.hpp>

#include "pool/detail/stack_trace.h"

namespace pool::detail {
namespace {

constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

WorkerSlot* g_slot = nullptr;
const CodeMap* g_code_map = nullptr;
// Touched only by a crash; large enough for the unwinder and the handler.
alignas(16) char g_crash_stack[64 * 1024];

void on_crash(int signal) {
  // Skips this handler and the kernel's signal trampoline.
  const std::size_t count =
      boost::stacktrace::safe_dump_to(2, g_slot->crash_stack, sizeof(g_slot->crash_stack));
  if (g_code_map != nullptr) {
    for (std::size_t i = 0; i < count && i < kMaxCrashFrames; ++i) {
      g_slot->crash_stack[i] = g_code_map->to_parent(g_slot->crash_stack[i]);
    }
  }
  g_slot->crash_frames.store(static_cast<std::uint32_t>(count), std::memory_order_release);
  // The default action, from here: returning would re-run a faulting instruction, but not a
  // raise() or an abort() that returned.
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}

bool is_crash_signal(int signal) {
  for (int crash : kCrashSignals) {
    if (crash == signal) return true;
  }
  return false;
}

}  // namespace

void record_crash_stacks(WorkerSlot* slot, const CodeMap* code_map) {
  g_slot = slot;
  g_code_map = code_map;
  slot->crash_frames.store(0, std::memory_order_relaxed);
  stack_t alternate{};
  alternate.ss_sp = g_crash_stack;
  alternate.ss_size = sizeof(g_crash_stack);
  if (::sigaltstack(&alternate, nullptr) != 0) return;
  for (int signal : kCrashSignals) {
    struct sigaction now {};
    if (::sigaction(signal, nullptr, &now) != 0 || now.sa_handler != SIG_DFL) continue;
    struct sigaction action {};
    action.sa_handler = on_crash;
    sigemptyset(&action.sa_mask);
    // SA_NODEFER: the raise() in the handler kills at once.
    action.sa_flags = SA_ONSTACK | SA_NODEFER | SA_RESETHAND;
    ::sigaction(signal, &action, nullptr);
  }
}

std::string take_crash_stack(WorkerSlot& slot, int signal) {
  const std::uint32_t count = slot.crash_frames.exchange(0, std::memory_order_acquire);
  if (!is_crash_signal(signal) || count == 0) return {};
  return describe_stack(slot.crash_stack, std::min<std::size_t>(count, kMaxCrashFrames),
                        /*first_is_exact=*/true);
}

}  // namespace pool::detail
