// Code addresses between a pool's process and a worker that is not its fork (Start::spawn, or a
// fork of the forkserver): both run the same files, each at its own addresses (ASLR). The parent
// sends its table of loaded modules; the worker matches them by name to its own, and translates
// a job's runner (the parent's address of the code that runs the call) to its own, and a crash's
// return addresses back to the parent's, which symbolizes them. (A task or op that is a function
// pointer travels by its module and offset instead: function_identity.h.)
#ifndef POOL_DETAIL_PROCESS_CODE_MAP_H_
#define POOL_DETAIL_PROCESS_CODE_MAP_H_

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pool::detail {

// One module (the program, "", or a shared library by the dynamic linker's name) as loaded in a
// process: its load address and the extent of its loaded segments.
struct LoadedModule {
  std::string name;
  std::uint64_t base = 0;
  std::uint64_t start = 0;
  std::uint64_t end = 0;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(name, base, start, end);
  }
};

// This process's modules, in the dynamic linker's order.
std::vector<LoadedModule> loaded_modules();

class CodeMap {
 public:
  // In the worker: the parent's modules against this process's.
  explicit CodeMap(const std::vector<LoadedModule>& parent);

  // The parent's code address `address` here. Throws std::logic_error naming the module (and the
  // task's type, given its typeid name; empty: unknown) when it is not loaded in this process (a
  // library the parent loaded with dlopen, say), or when the address lies outside every module
  // the parent had.
  const void* to_local(const void* address, std::string_view task_type = {}) const;
  // A code address of this process as the parent's; unchanged outside every shared module.
  // Async-signal-safe (a crash handler calls it).
  void* to_parent(void* address) const noexcept;

 private:
  struct Entry {
    std::uint64_t start = 0;  // in the parent
    std::uint64_t end = 0;
    std::int64_t shift = 0;  // local address - parent address
    bool here = false;       // loaded in this process
    std::string name;
  };
  std::vector<Entry> entries_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_CODE_MAP_H_
