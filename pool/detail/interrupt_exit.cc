#include "pool/detail/interrupt_exit.h"

#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <exception>

#include "pool/errors.h"

namespace pool::detail {
namespace {

std::terminate_handler previous_handler = nullptr;

// The signal an uncaught Interrupted stands for, or 0 when the terminating exception is anything
// else (or there is none: std::terminate called directly).
int interrupting_signal() noexcept {
  const std::exception_ptr current = std::current_exception();
  if (!current) return 0;
  try {
    std::rethrow_exception(current);
  } catch (const Interrupted& interrupted) {
    return interrupted.signal_number() > 0 && interrupted.signal_number() < NSIG
               ? interrupted.signal_number()
               : 0;
  } catch (...) {
  }
  return 0;
}

[[noreturn]] void terminate_as_interrupted() {
  if (const int signal_number = interrupting_signal()) {
    // The program is ending either way; its own handler for the signal (installed after the pool
    // raised Interrupted, or the shell's SIG_IGN) must not keep it alive or turn this into a
    // different exit.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    ::sigaction(signal_number, &default_action, nullptr);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, signal_number);
    ::pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
    // An unblocked signal sent to the calling thread is delivered before raise() returns.
    ::raise(signal_number);
  }
  if (previous_handler != nullptr) previous_handler();
  std::abort();
}

}  // namespace

void install_interrupt_exit() {
  // A function-local static: initialized once, thread-safely, by whichever Interrupted comes first.
  [[maybe_unused]] static const bool installed = [] {
    previous_handler = std::set_terminate(terminate_as_interrupted);
    return true;
  }();
}

}  // namespace pool::detail
