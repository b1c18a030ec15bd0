// The process's MPI session, shared by every MpiPool the program creates, one after the other.
// Used from the thread that started it (MPI_THREAD_FUNNELED).
#ifndef POOL_DETAIL_MPI_SESSION_H_
#define POOL_DETAIL_MPI_SESSION_H_

#include <mpi.h>

namespace pool::detail::mpi {

struct Session {
  bool started = false;
  bool we_initialized = false;
  MPI_Comm comm = MPI_COMM_NULL;  // the pools' own duplicate of MPI_COMM_WORLD
  int rank = 0;
  int size = 1;
  bool pool_alive = false;
};

Session& session();

// Once per process: initializes MPI unless the program did (and then finalizes it at exit),
// duplicates MPI_COMM_WORLD, and on rank 0 of a job of several ranks arranges that finalizing MPI
// stops the worker ranks. Throws std::runtime_error when MPI fails.
void start_session();

}  // namespace pool::detail::mpi

#endif  // POOL_DETAIL_MPI_SESSION_H_
