#include "tests/leak_check.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pool::testing {

namespace {

struct ProcessEntry {
  pid_t pid;
  pid_t parent;
  std::string command;  // comm
};

std::vector<ProcessEntry> all_processes() {
  std::vector<ProcessEntry> processes;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat_file(entry.path() / "stat");
    std::string stat;
    if (!std::getline(stat_file, stat)) continue;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const auto open = stat.find('(');
    const auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    pid_t parent = 0;
    rest >> state >> parent;
    processes.push_back(
        {static_cast<pid_t>(std::stol(name)), parent, stat.substr(open + 1, close - open - 1)});
  }
  return processes;
}

}  // namespace

pid_t forkserver_process() {
  for (const ProcessEntry& process : all_processes()) {
    if (process.parent == ::getpid() && process.command == "pool-forkserver") return process.pid;
  }
  return -1;
}

std::vector<pid_t> child_processes() {
  // The program's forkserver (Start::forkserver) lives as long as the program; the workers it
  // forked for pools are counted as this process's children.
  std::vector<ProcessEntry> processes = all_processes();
  std::vector<pid_t> servers;
  for (const ProcessEntry& process : processes) {
    if (process.parent == ::getpid() && process.command == "pool-forkserver") {
      servers.push_back(process.pid);
    }
  }
  std::vector<pid_t> children;
  for (const ProcessEntry& process : processes) {
    const bool server = std::find(servers.begin(), servers.end(), process.pid) != servers.end();
    const bool mine = process.parent == ::getpid() ||
                      std::find(servers.begin(), servers.end(), process.parent) != servers.end();
    if (mine && !server) children.push_back(process.pid);
  }
  return children;
}

std::vector<std::string> shared_memory_named_by(pid_t pid) {
  std::vector<std::string> names;
  const std::string prefix = std::string(kSegmentPrefix) + std::to_string(pid) + "-";
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0) names.push_back(name);
  }
  return names;
}

void NoLeftoversTest::TearDown() {
  // Children a test forked on purpose are its own business; pools reap theirs before returning.
  EXPECT_EQ(child_processes(), std::vector<pid_t>{}) << "child processes left behind";
  EXPECT_EQ(shared_memory_named_by(::getpid()), std::vector<std::string>{})
      << "shared memory left in /dev/shm";
}

}  // namespace pool::testing
