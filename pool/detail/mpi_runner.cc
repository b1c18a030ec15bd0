#include "pool/detail/mpi_runner.h"

#include <link.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "pool/detail/exception_text.h"
#include "pool/detail/serialization.h"

namespace pool::detail {

// ---------------------------------------------------------------------------------------------
// Registry of runners.

namespace {

struct RegisteredRunner {
  std::string type_name;
  MakeMpiRunner make = nullptr;
  bool ambiguous = false;
};

std::map<std::uint64_t, RegisteredRunner>& runner_registry() {
  static std::map<std::uint64_t, RegisteredRunner> registry;
  return registry;
}

std::mutex& runner_registry_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::uint64_t fnv1a(const char* text) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (; *text != '\0'; ++text) {
    hash ^= static_cast<unsigned char>(*text);
    hash *= 1099511628211ULL;
  }
  return hash == 0 ? 1 : hash;
}

}  // namespace

std::uint64_t register_mpi_runner(const char* type_name, MakeMpiRunner make) {
  std::lock_guard<std::mutex> guard(runner_registry_mutex());
  const std::uint64_t id = fnv1a(type_name);
  auto [it, inserted] = runner_registry().try_emplace(id, RegisteredRunner{type_name, make});
  // Equal names with different code: types in anonymous namespaces of two files.
  if (!inserted && (it->second.make != make || it->second.type_name != type_name)) {
    it->second.ambiguous = true;
  }
  return id;
}

MakeMpiRunner find_mpi_runner(std::uint64_t id) {
  std::lock_guard<std::mutex> guard(runner_registry_mutex());
  const auto it = runner_registry().find(id);
  if (it == runner_registry().end()) {
    throw std::logic_error(
        "pool::MpiPool: this rank does not know the task's type; every rank must run the same "
        "program");
  }
  if (it->second.ambiguous) {
    throw std::logic_error("pool::MpiPool: two different task types are both named '" +
                           demangle(it->second.type_name.c_str()) +
                           "' (types in anonymous namespaces of two files?); rename one");
  }
  return it->second.make;
}

// ---------------------------------------------------------------------------------------------
// Code addresses: the module (as the dynamic linker names it, "" for the program) and the offset
// from its load address, the same on every rank that runs the same files.

namespace {

struct ModuleSearch {
  std::uintptr_t address = 0;  // find the module holding this address...
  const char* name = nullptr;  // ...or the module with this name
  std::string found_name;
  std::uintptr_t base = 0;
  bool found = false;
};

int visit_module(dl_phdr_info* info, std::size_t, void* data) {
  auto& search = *static_cast<ModuleSearch*>(data);
  const char* name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  if (search.name != nullptr) {
    if (std::strcmp(name, search.name) != 0) return 0;
  } else {
    bool inside = false;
    for (int i = 0; i < info->dlpi_phnum && !inside; ++i) {
      const ElfW(Phdr)& segment = info->dlpi_phdr[i];
      if (segment.p_type != PT_LOAD) continue;
      const std::uintptr_t start = info->dlpi_addr + segment.p_vaddr;
      inside = search.address >= start && search.address < start + segment.p_memsz;
    }
    if (!inside) return 0;
  }
  search.found_name = name;
  search.base = info->dlpi_addr;
  search.found = true;
  return 1;
}

}  // namespace

std::string encode_code_address(const void* address) {
  ModuleSearch search;
  search.address = reinterpret_cast<std::uintptr_t>(address);
  dl_iterate_phdr(visit_module, &search);
  if (!search.found) throw std::logic_error("pool::MpiPool: a task function outside any module");
  const std::uint64_t offset = search.address - search.base;
  std::string out(reinterpret_cast<const char*>(&offset), sizeof offset);
  return out + search.found_name;
}

const void* decode_code_address(const std::byte* data, std::size_t size) {
  std::uint64_t offset = 0;
  if (size < sizeof offset) throw std::runtime_error("pool::MpiPool: truncated code address");
  std::memcpy(&offset, data, sizeof offset);
  const std::string name(reinterpret_cast<const char*>(data) + sizeof offset, size - sizeof offset);
  ModuleSearch search;
  search.name = name.c_str();
  dl_iterate_phdr(visit_module, &search);
  if (!search.found) {
    throw std::logic_error("pool::MpiPool: the task function's library " + name +
                           " is not loaded on this rank; every rank must run the same program");
  }
  return reinterpret_cast<const void*>(search.base + offset);
}

MpiCall::MpiCall(std::uint64_t runner, const std::byte* state, std::size_t size) {
  try {
    runner_ = find_mpi_runner(runner)(state, size);
  } catch (const std::exception& error) {
    error_ = error.what();
  }
}

std::optional<TaskFailure> MpiCall::run(const MpiChunkInput& chunk, std::string& out) {
  std::int64_t item = chunk.first_item;
  try {
    if (!runner_) throw std::logic_error(error_);
    runner_->run(chunk, out, item);
  } catch (...) {
    return TaskFailure::capture(item, std::current_exception());
  }
  return std::nullopt;
}

std::optional<TaskFailure> MpiCall::run(const MpiChunkInput& chunk, std::string& out,
                                        MpiRunTimes& times) {
  std::int64_t item = chunk.first_item;
  try {
    if (!runner_) throw std::logic_error(error_);
    runner_->run_traced(chunk, out, item, times);
  } catch (...) {
    // A task that threw ends the run; one that failed before any task ran leaves no run.
    if (times.begin_ns != 0 && times.end_ns == 0) times.end_ns = monotonic_now_ns();
    return TaskFailure::capture(item, std::current_exception());
  }
  return std::nullopt;
}

}  // namespace pool::detail
