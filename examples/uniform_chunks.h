// Reproducible random input for examples that fill a large array in parallel: chunk k of the array
// gets its own generator seeded with k, so the numbers depend only on the chunk size, never on
// which worker fills which chunk or how many workers there are.
#ifndef EXAMPLES_UNIFORM_CHUNKS_H_
#define EXAMPLES_UNIFORM_CHUNKS_H_

#include <cstdint>
#include <random>
#include <span>

namespace examples {

// Fills chunk (chunk number `chunk_index`) with numbers uniform in [0, 1).
inline void fill_uniform_chunk(std::span<double> chunk, std::uint64_t chunk_index) {
  std::mt19937_64 generator(0x5eed'0000 + chunk_index);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (double& value : chunk) value = uniform(generator);
}

}  // namespace examples

#endif  // EXAMPLES_UNIFORM_CHUNKS_H_
