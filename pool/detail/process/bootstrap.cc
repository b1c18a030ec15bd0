#include "pool/detail/process/bootstrap.h"

#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cereal/archives/binary.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "pool/cpus.h"
#include "pool/detail/function_identity.h"
#include "pool/detail/process/forkserver.h"
#include "pool/detail/process/message.h"
#include "pool/detail/process/protocol.h"
#include "pool/detail/process/shared_segment.h"
#include "pool/detail/process/worker_main.h"

extern char** environ;

namespace pool::detail {
namespace {

// Names the role of a new execution; removed before anything else runs, so that programs the
// worker starts do not inherit it.
constexpr char kRoleVariable[] = "POOL_PROCESS_ROLE";
constexpr int kRoleFd = 3;

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool read_all(int fd, char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::read(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

SharedSegment receive_segment(int fd) {
  Message message{};
  int passed = -1;
  if (!read_message(fd, message, &passed)) ::_exit(0);
  if (message.type != MessageType::kSegment) ::_exit(3);
  if (message.a == 0) return {};
  if (passed < 0) ::_exit(3);
  return SharedSegment::adopt(passed, message.a);
}

// Runs in the new execution before main (see bootstrap.h).
__attribute__((constructor)) void enter_role() {
  const char* role = std::getenv(kRoleVariable);
  if (role == nullptr) return;
  const std::string name = role;
  ::unsetenv(kRoleVariable);
  // Named as the program in `ps` and `top`, not "exe" (it was started as /proc/self/exe).
  ::prctl(PR_SET_NAME, program_invocation_short_name);
  if (name == "worker") serve_bootstrapped_worker(kRoleFd);
  if (name == "forkserver") serve_forks(kRoleFd);
}

}  // namespace

bool send_bootstrap(int fd, const Bootstrap& bootstrap, const BootstrapSegments& segments) {
  std::ostringstream encoded;
  {
    cereal::BinaryOutputArchive archive(encoded);
    archive(bootstrap);
  }
  const std::string bytes = encoded.str();
  if (!write_message(fd,
                     make_message(MessageType::kBootstrap, bootstrap.index, 0, bytes.size(), 4))) {
    return false;
  }
  for (const BootstrapSegment& segment :
       {segments.control, segments.arena, segments.results, segments.trace}) {
    const std::uint64_t size = segment.fd >= 0 ? segment.size : 0;
    if (!write_message(fd, make_message(MessageType::kSegment, bootstrap.index, 0, size),
                       segment.fd >= 0 ? segment.fd : -1)) {
      return false;
    }
  }
  return write_all(fd, bytes.data(), bytes.size());
}

void serve_bootstrapped_worker(int fd) {
  // As a forked worker: dies with whoever started it; Ctrl-C is the pool's to handle.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::signal(SIGINT, SIG_IGN);
  Bootstrap bootstrap;
  SharedSegment control, arena, results, trace;
  try {
    Message header{};
    if (!read_message(fd, header, nullptr)) ::_exit(0);
    if (header.type != MessageType::kBootstrap || header.b != 4 || header.a > (1u << 26)) {
      ::_exit(3);
    }
    control = receive_segment(fd);
    arena = receive_segment(fd);
    results = receive_segment(fd);
    trace = receive_segment(fd);
    std::string bytes(header.a, '\0');
    if (!read_all(fd, bytes.data(), bytes.size())) ::_exit(0);
    std::istringstream in(bytes);
    cereal::BinaryInputArchive archive(in);
    archive(bootstrap);
  } catch (...) {
    ::_exit(3);
  }
  if (control.size() < sizeof(ControlBlock) || arena.size() == 0) ::_exit(3);
  auto* block = reinterpret_cast<ControlBlock*>(control.data());
  if (bootstrap.index >= block->workers ||
      control.size() < ControlBlock::bytes_for(block->workers) ||
      (trace.size() != 0 && (bootstrap.trace_offset % alignof(TraceHeader) != 0 ||
                             bootstrap.trace_offset + sizeof(TraceHeader) > trace.size()))) {
    ::_exit(3);
  }
  TraceBuffer trace_buffer;
  if (trace.size() != 0) {
    trace_buffer = TraceBuffer::attach(trace.data() + bootstrap.trace_offset);
    if (TraceBuffer::bytes_for(trace_buffer.capacity()) > trace.size() - bootstrap.trace_offset) {
      ::_exit(3);
    }
  }
  static CodeMap* const code_map = new CodeMap(bootstrap.modules);
  std::function<void()> initializer;
  if (!bootstrap.initializer.empty()) {
    const std::string address = bootstrap.initializer;
    initializer = [address] {
      // Decoded here, so that a module this worker lacks fails the pool with InitializerError.
      const void* code =
          decode_code_address(reinterpret_cast<const std::byte*>(address.data()), address.size());
      reinterpret_cast<void (*)()>(const_cast<void*>(code))();
    };
  }
  const CpuPinning pinning = CpuPinning::of(bootstrap.cpus);
  WorkerSetup setup;
  setup.control = block;
  setup.index = bootstrap.index;
  setup.fd = fd;
  setup.arena = arena.data();
  setup.results = &results;
  setup.initializer = &initializer;
  setup.pinning = &pinning;
  setup.trace = trace.size() != 0 ? &trace_buffer : nullptr;
  setup.startup_ns = bootstrap.startup_ns;
  setup.code_map = code_map;
  worker_main(setup);
}

pid_t start_program(ProgramRole role, int fd) {
  std::vector<std::string> variables;
  for (char** variable = environ; *variable != nullptr; ++variable) {
    if (std::strncmp(*variable, kRoleVariable, sizeof kRoleVariable - 1) == 0 &&
        (*variable)[sizeof kRoleVariable - 1] == '=') {
      continue;
    }
    variables.emplace_back(*variable);
  }
  variables.push_back(std::string(kRoleVariable) + "=" +
                      (role == ProgramRole::kWorker ? "worker" : "forkserver"));
  std::vector<char*> envp;
  for (std::string& variable : variables) envp.push_back(variable.data());
  envp.push_back(nullptr);
  std::string program = program_invocation_name;
  char* argv[] = {program.data(), nullptr};

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attributes);
  posix_spawn_file_actions_adddup2(&actions, fd, kRoleFd);
  posix_spawn_file_actions_addclosefrom_np(&actions, kRoleFd + 1);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) {
    throw std::system_error(error, std::generic_category(),
                            role == ProgramRole::kWorker
                                ? "pool: spawn of a worker (/proc/self/exe)"
                                : "pool: spawn of the forkserver");
  }
  return pid;
}

}  // namespace pool::detail
