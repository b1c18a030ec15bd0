// Makes a pool::Interrupted that no one catches end the process the way Ctrl-C ends a program
// without a pool: killed by the signal (a shell reports 130 for SIGINT), instead of the abort of
// std::terminate (134), which reads as a crash.
//
// install_interrupt_exit() installs, once per process, a std::terminate handler that chains to the
// one installed before it. When the exception being handled is a pool::Interrupted, the handler
// restores the signal's default action, unblocks it and raises it; for anything else it calls the
// previous handler (std::abort when there was none). A program that installs its own terminate
// handler afterwards keeps it. Thread-safe; costs one std::set_terminate on first use.
#ifndef POOL_DETAIL_INTERRUPT_EXIT_H_
#define POOL_DETAIL_INTERRUPT_EXIT_H_

namespace pool::detail {

void install_interrupt_exit();

}  // namespace pool::detail

#endif  // POOL_DETAIL_INTERRUPT_EXIT_H_
