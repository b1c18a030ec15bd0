#include "pool/detail/function_identity.h"

#include <link.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>

#include "pool/detail/exception_text.h"

namespace pool::detail {

// ---------------------------------------------------------------------------------------------
// Registry of runners.

namespace {

struct RegisteredRunner {
  std::string type_name;
  MakeRunner make = nullptr;
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

std::uint64_t register_runner(const char* type_name, MakeRunner make) {
  std::lock_guard<std::mutex> guard(runner_registry_mutex());
  const std::uint64_t id = fnv1a(type_name);
  auto [it, inserted] = runner_registry().try_emplace(id, RegisteredRunner{type_name, make});
  // Equal names with different code: types in anonymous namespaces of two files.
  if (!inserted && (it->second.make != make || it->second.type_name != type_name)) {
    it->second.ambiguous = true;
  }
  return id;
}

MakeRunner find_runner(std::uint64_t id) {
  std::lock_guard<std::mutex> guard(runner_registry_mutex());
  const auto it = runner_registry().find(id);
  if (it == runner_registry().end()) {
    throw std::logic_error("pool: this process does not know the task's type (runner id " +
                           std::to_string(id) +
                           "); every process of a pool must run the same program");
  }
  if (it->second.ambiguous) {
    throw std::logic_error("pool: two different task types are both named '" +
                           demangle(it->second.type_name.c_str()) +
                           "' (types in anonymous namespaces of two files?); rename one");
  }
  return it->second.make;
}

void throw_not_runner_of(const Runner& runner, const std::type_info& interface) {
  throw std::logic_error("pool: the runner " + demangle(typeid(runner).name()) + " is not a " +
                         demangle(interface.name()) + "; a call reached another backend's process");
}

// ---------------------------------------------------------------------------------------------
// Code addresses.

namespace {

struct ModuleSearch {
  std::uintptr_t address = 0;         // find the module holding this address...
  const std::string* name = nullptr;  // ...or the module with this name,
  std::uint64_t offset = 0;           // and whether it holds this offset
  std::string found_name;
  std::uintptr_t base = 0;
  bool found = false;
  bool holds_offset = false;
};

bool holds(const dl_phdr_info& info, std::uintptr_t address) {
  for (int i = 0; i < info.dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info.dlpi_phdr[i];
    if (segment.p_type != PT_LOAD) continue;
    const std::uintptr_t start = info.dlpi_addr + segment.p_vaddr;
    if (address >= start && address - start < segment.p_memsz) return true;
  }
  return false;
}

int visit_module(dl_phdr_info* info, std::size_t, void* data) {
  auto& search = *static_cast<ModuleSearch*>(data);
  const char* name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  if (search.name != nullptr) {
    if (std::string_view(name) != *search.name) return 0;
    // A corrupted offset must fail here, not when the function is called.
    search.holds_offset = holds(*info, info->dlpi_addr + search.offset);
  } else if (!holds(*info, search.address)) {
    return 0;
  }
  search.found_name = name;
  search.base = info->dlpi_addr;
  search.found = true;
  return 1;
}

// A name as it arrived, for a message: a corrupted one may hold any byte.
std::string printable(const std::string& name) {
  std::string out;
  for (const char c : name) {
    if (c >= ' ' && c <= '~') {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      const auto byte = static_cast<unsigned char>(c);
      out += {'\\', 'x', kHex[byte >> 4], kHex[byte & 15]};
    }
  }
  return out;
}

}  // namespace

std::string encode_code_address(const void* address) {
  ModuleSearch search;
  search.address = reinterpret_cast<std::uintptr_t>(address);
  dl_iterate_phdr(visit_module, &search);
  if (!search.found) throw std::logic_error("pool: a task function outside any loaded module");
  const std::uint64_t offset = search.address - search.base;
  std::string out(reinterpret_cast<const char*>(&offset), sizeof offset);
  return out + search.found_name;
}

const void* decode_code_address(const std::byte* data, std::size_t size) {
  std::uint64_t offset = 0;
  if (size < sizeof offset) throw std::runtime_error("pool: truncated code address");
  std::memcpy(&offset, data, sizeof offset);
  const std::string name(reinterpret_cast<const char*>(data) + sizeof offset, size - sizeof offset);
  ModuleSearch search;
  search.name = &name;
  search.offset = offset;
  dl_iterate_phdr(visit_module, &search);
  const std::string module = name.empty() ? "the program" : "library " + printable(name);
  if (!search.found) {
    throw std::logic_error("pool: the task function's " + module +
                           " is not loaded in this process; every process of a pool must run the "
                           "same program");
  }
  if (!search.holds_offset) {
    throw std::logic_error("pool: a task function's address lies outside " + module +
                           " (corrupted on the way?)");
  }
  return reinterpret_cast<const void*>(search.base + offset);
}

}  // namespace pool::detail
