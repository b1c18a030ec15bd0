#include "pool/detail/process/code_map.h"

#include <link.h>

#include <algorithm>
#include <stdexcept>

#include "pool/detail/exception_text.h"

namespace pool::detail {
namespace {

int add_module(dl_phdr_info* info, std::size_t, void* data) {
  auto& modules = *static_cast<std::vector<LoadedModule>*>(data);
  LoadedModule module;
  module.name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  module.base = info->dlpi_addr;
  module.start = ~std::uint64_t{0};
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    if (segment.p_type != PT_LOAD) continue;
    const std::uint64_t start = info->dlpi_addr + segment.p_vaddr;
    module.start = std::min(module.start, start);
    module.end = std::max<std::uint64_t>(module.end, start + segment.p_memsz);
  }
  if (module.end > module.start) modules.push_back(std::move(module));
  return 0;
}

}  // namespace

std::vector<LoadedModule> loaded_modules() {
  std::vector<LoadedModule> modules;
  dl_iterate_phdr(add_module, &modules);
  return modules;
}

CodeMap::CodeMap(const std::vector<LoadedModule>& parent) {
  const std::vector<LoadedModule> here = loaded_modules();
  for (const LoadedModule& theirs : parent) {
    Entry entry;
    entry.start = theirs.start;
    entry.end = theirs.end;
    entry.name = theirs.name;
    // The same file is as large here: a different size means another file of the same name.
    const auto mine = std::find_if(here.begin(), here.end(), [&](const LoadedModule& module) {
      return module.name == theirs.name && module.end - module.start == theirs.end - theirs.start;
    });
    if (mine != here.end()) {
      entry.here = true;
      entry.shift = static_cast<std::int64_t>(mine->base - theirs.base);
    }
    entries_.push_back(std::move(entry));
  }
}

namespace {

// "the task (long (*)(long))", for an error only: demangling allocates.
std::string task_text(std::string_view task_type) {
  if (task_type.empty()) return "the task";
  return "the task (" + demangle(std::string(task_type).c_str()) + ")";
}

}  // namespace

const void* CodeMap::to_local(const void* address, std::string_view task_type) const {
  const auto at = reinterpret_cast<std::uint64_t>(address);
  for (const Entry& entry : entries_) {
    if (at < entry.start || at >= entry.end) continue;
    if (!entry.here) {
      throw std::logic_error(
          "pool: the code of " + task_text(task_type) + " is in " +
          (entry.name.empty() ? std::string("the program") : "library " + entry.name) +
          ", which is not loaded in this worker, a new execution of the program (was it loaded "
          "with dlopen after the pool started?); link the library into the program, or use "
          "Start::fork");
    }
    return reinterpret_cast<const void*>(at + static_cast<std::uint64_t>(entry.shift));
  }
  throw std::logic_error("pool: the code address of " + task_text(task_type) +
                         " lies outside every module of the pool's process");
}

void* CodeMap::to_parent(void* address) const noexcept {
  const auto at = reinterpret_cast<std::uint64_t>(address);
  for (const Entry& entry : entries_) {
    if (!entry.here) continue;
    const std::uint64_t local = at - static_cast<std::uint64_t>(entry.shift);
    if (local >= entry.start && local < entry.end) return reinterpret_cast<void*>(local);
  }
  return address;
}

}  // namespace pool::detail
