// A worker rank's side of MpiPool: it serves rank 0's commands (a call's runner and state, a
// chunk, the end of a call, a clock request) through every pool the program creates, until rank 0
// finalizes MPI. A chunk's task that dies of a signal or calls exit() is reported to rank 0 first,
// best effort, so that rank 0 can say which work was lost.
#ifndef POOL_DETAIL_MPI_WORKER_H_
#define POOL_DETAIL_MPI_WORKER_H_

namespace pool::detail::mpi {

// Serves until rank 0 stops this rank, then finalizes MPI and exits the process with status 0.
// Call it after start_session(), on a rank other than 0.
[[noreturn]] void serve();

// True while this rank serves: a task that asks for its rank is already being served.
bool serving();

}  // namespace pool::detail::mpi

#endif  // POOL_DETAIL_MPI_WORKER_H_
