#include "pool/detail/memory_limits.h"

#include <sys/sysinfo.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "pool/errors.h"

namespace pool::detail {
namespace {

constexpr std::uint64_t kUnlimited = std::numeric_limits<std::uint64_t>::max();

std::uint64_t saturating_sum(std::uint64_t a, std::uint64_t b) {
  std::uint64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? kUnlimited : sum;
}

struct MemoryLimit {
  std::uint64_t bytes = kUnlimited;
  std::string description;  // completes "pool: ... would take N bytes; <description>"
};

// A limit file's value; nothing for "max", a missing file or anything unreadable.
std::optional<std::uint64_t> read_limit(const std::string& path) {
  std::ifstream file(path);
  std::string text;
  if (!(file >> text) || text == "max") return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    if (__builtin_mul_overflow(value, 10, &value) ||
        __builtin_add_overflow(value, static_cast<std::uint64_t>(c - '0'), &value)) {
      return kUnlimited;
    }
  }
  return value;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  return parts;
}

// This process's cgroup in the memory hierarchy (v1) or the unified one (v2), as
// /proc/self/cgroup names it: "4:memory:/a/b" or "0::/a/b".
std::optional<std::string> own_cgroup(bool unified) {
  std::ifstream file("/proc/self/cgroup");
  std::string line;
  while (std::getline(file, line)) {
    const std::size_t first = line.find(':');
    const std::size_t second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::vector<std::string> names = split(controllers, ',');
    const bool match = unified ? line.compare(0, first, "0") == 0 && controllers.empty()
                               : std::find(names.begin(), names.end(), "memory") != names.end();
    if (match) return line.substr(second + 1);
  }
  return std::nullopt;
}

// Where that hierarchy is mounted: the directory of `cgroup`, from /proc/self/mountinfo. A
// mount's root is the cgroup it shows (a container sees its own cgroup as "/"), so the mount
// root's part of the path is dropped.
std::optional<std::string> cgroup_directory(bool unified, const std::string& cgroup,
                                            std::string& mount_point) {
  std::ifstream file("/proc/self/mountinfo");
  std::string line;
  while (std::getline(file, line)) {
    const std::size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream head(line.substr(0, dash));
    std::istringstream tail(line.substr(dash + 3));
    std::string id, parent, device, root, point, fstype, source, options;
    if (!(head >> id >> parent >> device >> root >> point) ||
        !(tail >> fstype >> source >> options)) {
      continue;
    }
    if (unified ? fstype != "cgroup2" : fstype != "cgroup") continue;
    if (!unified) {
      const std::vector<std::string> names = split(options, ',');
      if (std::find(names.begin(), names.end(), "memory") == names.end()) continue;
    }
    mount_point = point;
    if (root == "/") return point + (cgroup == "/" ? "" : cgroup);
    if (cgroup.compare(0, root.size(), root) == 0) return point + cgroup.substr(root.size());
    return point;
  }
  return std::nullopt;
}

// The directories of this process's cgroup and of each one above it, up to the hierarchy's root;
// none when the hierarchy is not mounted. `cgroup` gets the cgroup's name.
std::vector<std::string> cgroup_levels(bool unified, std::string& cgroup) {
  const std::optional<std::string> own = own_cgroup(unified);
  if (!own) return {};
  std::string mount_point;
  const std::optional<std::string> directory = cgroup_directory(unified, *own, mount_point);
  if (!directory) return {};
  cgroup = *own;
  std::vector<std::string> levels;
  for (std::string dir = *directory;; dir = dir.substr(0, dir.rfind('/'))) {
    levels.push_back(dir);
    if (dir.size() <= mount_point.size() || dir.rfind('/') == std::string::npos) break;
  }
  return levels;
}

// The lowest limit on the way from this process's cgroup up to its hierarchy's root, memory and
// swap together; nothing when no cgroup sets one.
std::optional<std::uint64_t> cgroup_limit(bool unified, std::uint64_t swap_bytes,
                                          std::string& cgroup) {
  std::optional<std::uint64_t> lowest;
  for (const std::string& dir : cgroup_levels(unified, cgroup)) {
    std::optional<std::uint64_t> limit;
    if (unified) {
      if (const auto memory = read_limit(dir + "/memory.max")) {
        const auto swap = read_limit(dir + "/memory.swap.max");
        limit = saturating_sum(*memory, std::min(swap.value_or(kUnlimited), swap_bytes));
      }
    } else if (const auto memory = read_limit(dir + "/memory.limit_in_bytes")) {
      // memsw bounds memory and swap together; without it the cgroup may swap all it can.
      limit = std::min(read_limit(dir + "/memory.memsw.limit_in_bytes").value_or(kUnlimited),
                       saturating_sum(*memory, swap_bytes));
    }
    if (limit && (!lowest || *limit < *lowest)) lowest = limit;
  }
  return lowest;
}

MemoryLimit find_memory_limit() {
  struct sysinfo info {};
  MemoryLimit found;
  std::uint64_t swap_bytes = 0;
  if (sysinfo(&info) == 0) {
    const std::uint64_t unit = info.mem_unit == 0 ? 1 : info.mem_unit;
    swap_bytes = static_cast<std::uint64_t>(info.totalswap) * unit;
    found.bytes = saturating_sum(static_cast<std::uint64_t>(info.totalram) * unit, swap_bytes);
  }
  const char* kind = swap_bytes == 0 ? " (memory, no swap)" : " (memory and swap)";
  found.description = "this machine has at most " + describe_bytes(found.bytes) + kind;
  for (bool unified : {false, true}) {
    std::string cgroup;
    const std::optional<std::uint64_t> limit = cgroup_limit(unified, swap_bytes, cgroup);
    if (limit && *limit < found.bytes) {
      found.bytes = *limit;
      found.description = "this process's memory cgroup (" + cgroup + ") allows at most " +
                          describe_bytes(*limit) + kind;
    }
  }
  return found;
}

const MemoryLimit& memory_limit() {
  static const MemoryLimit limit = find_memory_limit();
  return limit;
}

}  // namespace

std::uint64_t memory_limit_bytes() { return memory_limit().bytes; }

std::uint64_t checked_product(std::uint64_t a, std::uint64_t b, const char* what) {
  std::uint64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) {
    throw std::length_error(std::string("pool: ") + what + ": " + std::to_string(a) + " x " +
                            std::to_string(b) + " does not fit in 64 bits");
  }
  return product;
}

std::uint64_t checked_sum(std::uint64_t a, std::uint64_t b, const char* what) {
  std::uint64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    throw std::length_error(std::string("pool: ") + what + ": " + std::to_string(a) + " + " +
                            std::to_string(b) + " does not fit in 64 bits");
  }
  return sum;
}

void check_memory_request(std::uint64_t bytes, const std::string& what) {
  const MemoryLimit& limit = memory_limit();
  if (bytes <= limit.bytes) return;
  throw OutOfMemory("pool: " + what + " would take " + std::to_string(bytes) + " bytes (" +
                        describe_bytes(bytes) + "); " + limit.description,
                    bytes, limit.bytes);
}

std::string describe_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  return text;
}

namespace {

// A "Name: value kB" line of /proc/meminfo, in bytes.
std::optional<std::uint64_t> meminfo_bytes(const std::string& text, const std::string& name) {
  const std::size_t at = text.find("\n" + name + ":");
  if (at == std::string::npos) return std::nullopt;
  std::istringstream line(text.substr(at + name.size() + 2));
  std::uint64_t kib = 0;
  if (!(line >> kib)) return std::nullopt;
  return kib * 1024;
}

// The least room left below a limit, from this process's cgroup up to the hierarchy's root.
std::optional<std::uint64_t> cgroup_room(bool unified) {
  std::string cgroup;
  std::optional<std::uint64_t> least;
  for (const std::string& dir : cgroup_levels(unified, cgroup)) {
    const auto limit = read_limit(dir + (unified ? "/memory.max" : "/memory.limit_in_bytes"));
    const auto usage = read_limit(dir + (unified ? "/memory.current" : "/memory.usage_in_bytes"));
    if (!limit || !usage) continue;
    const std::uint64_t room = *limit > *usage ? *limit - *usage : 0;
    if (!least || room < *least) least = room;
  }
  return least;
}

}  // namespace

std::uint64_t available_memory_bytes() {
  std::ifstream file("/proc/meminfo");
  const std::string text = "\n" + std::string(std::istreambuf_iterator<char>(file), {});
  std::uint64_t available = kUnlimited;
  if (const auto memory = meminfo_bytes(text, "MemAvailable")) {
    available = saturating_sum(*memory, meminfo_bytes(text, "SwapFree").value_or(0));
  }
  for (bool unified : {false, true}) {
    if (const auto room = cgroup_room(unified)) available = std::min(available, *room);
  }
  return available;
}

void check_memory_available(std::uint64_t bytes, const std::string& what, std::uint64_t available) {
  if (bytes <= available) return;
  throw OutOfMemory("pool: " + what + " needs " + std::to_string(bytes) + " bytes (" +
                        describe_bytes(bytes) + ") and only " + describe_bytes(available) +
                        " of memory are available (memory cgroups included)",
                    bytes, available);
}

std::uint64_t oom_kill_count() {
  std::ifstream file("/proc/vmstat");
  std::string name;
  std::uint64_t value = 0;
  while (file >> name >> value) {
    if (name == "oom_kill") return value;
  }
  return 0;
}

}  // namespace pool::detail
