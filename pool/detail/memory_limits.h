// How much memory a call may ask for, and overflow-checked arithmetic for the sizes it computes
// from user input. A pool checks a call's sizes with these before it posts anything, so an
// impossible call fails with a message (Python's MemoryError) instead of corrupting the pool or
// waking the OOM killer. Thread-safe.
#ifndef POOL_DETAIL_MEMORY_LIMITS_H_
#define POOL_DETAIL_MEMORY_LIMITS_H_

#include <cstdint>
#include <string>

namespace pool::detail {

// The most memory this process can hope to get: physical memory plus swap (what the kernel's
// overcommit heuristic allows), or the memory cgroup's limit (v1 memory.limit_in_bytes /
// memsw, v2 memory.max) when lower. Read once and cached.
std::uint64_t memory_limit_bytes();

// bytes > memory_limit_bytes(), without reading the limits for requests under 16 MiB: every
// system this runs on has that much, and the first reading costs about a millisecond of a
// program's first small call.
inline bool beyond_memory_limit(std::uint64_t bytes) {
  return bytes >= (std::uint64_t{16} << 20) && bytes > memory_limit_bytes();
}

// a * b, a + b. Throws std::length_error naming `what` and both operands when the result does not
// fit in 64 bits; `what` names the size being computed, e.g. "map's results (items x bytes)".
std::uint64_t checked_product(std::uint64_t a, std::uint64_t b, const char* what);
std::uint64_t checked_sum(std::uint64_t a, std::uint64_t b, const char* what);

// Throws OutOfMemory naming `what`, the bytes and the limit when bytes > memory_limit_bytes().
// `what` is a noun phrase; the message reads "pool: <what> would take <bytes> bytes (8.0 TiB);
// this machine has at most 23.4 GiB (memory and swap)".
void check_memory_request(std::uint64_t bytes, const std::string& what);

// Memory that can be had now, read afresh: the kernel's MemAvailable plus free swap, or less when
// a memory cgroup on the way up from this process's own is closer to its limit. A forecast, not a
// promise: other processes allocate too. Costs a few file reads.
std::uint64_t available_memory_bytes();

// Throws OutOfMemory naming `what`, the bytes and what is available when bytes exceed
// `available` (a reading of available_memory_bytes()). For memory about to be asked for in one
// piece (a shared segment), where the kernel would otherwise answer with the OOM killer instead
// of an error.
void check_memory_available(std::uint64_t bytes, const std::string& what,
                            std::uint64_t available = available_memory_bytes());

// How many processes the kernel's OOM killer has killed since boot (memory cgroups' included);
// 0 when unknown.
std::uint64_t oom_kill_count();

// "8.0 TiB", "512.0 MiB", "100 bytes": for messages.
std::string describe_bytes(std::uint64_t bytes);

}  // namespace pool::detail

#endif  // POOL_DETAIL_MEMORY_LIMITS_H_
