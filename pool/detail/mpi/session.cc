#include "pool/detail/mpi/session.h"

#include <mpi.h>

#include <cstdlib>

#include "pool/detail/mpi/messages.h"

namespace pool::detail::mpi {

namespace {

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

}  // namespace

Session& session() {
  static Session state;
  return state;
}

void start_session() {
  Session& state = session();
  if (state.started) return;
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

}  // namespace pool::detail::mpi
