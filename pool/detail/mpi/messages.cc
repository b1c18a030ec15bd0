#include "pool/detail/mpi/messages.h"

#include <mpi.h>

#include <climits>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace pool::detail::mpi {

int checked_count(std::size_t bytes) {
  if (bytes > static_cast<std::size_t>(INT_MAX)) {
    throw std::length_error("pool::MpiPool: a message over 2 GiB; use a smaller chunksize");
  }
  return static_cast<int>(bytes);
}

void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string("pool::MpiPool: ") + what +
                           " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

}  // namespace pool::detail::mpi
