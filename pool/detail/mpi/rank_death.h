// Rank 0's side of an MPI job that ends because a rank died. A worker rank cannot be replaced:
// mpirun and srun end the job by sending SIGTERM to the other ranks. Rank 0 then reports the
// chunks lost with it and how far each call got (MpiPoolCore::die_on_signal, lost_work), from its
// pool's loop when the signal comes inside one, else from the handler, with what is safe there.
#ifndef POOL_DETAIL_MPI_RANK_DEATH_H_
#define POOL_DETAIL_MPI_RANK_DEATH_H_

#include <cstdint>

namespace pool::detail::mpi {

// Installs rank 0's SIGTERM handler, unless the program has its own; remove restores the
// previous action.
void install_termination_handler();
void remove_termination_handler();

// The signal the handler received inside a DriveScope, for the loop to report; 0: none.
int termination_signal();

// While one lives, the handler leaves the report to the pool's loop. Nests.
class DriveScope {
 public:
  DriveScope();
  ~DriveScope();
  DriveScope(const DriveScope&) = delete;
  DriveScope& operator=(const DriveScope&) = delete;

 private:
  bool outer_;
};

// Chunks handed out to worker ranks and not yet answered, across pools, for the handler's report.
void count_chunk_sent();
void count_chunk_answered();
std::uint64_t chunks_out();

}  // namespace pool::detail::mpi

#endif  // POOL_DETAIL_MPI_RANK_DEATH_H_
