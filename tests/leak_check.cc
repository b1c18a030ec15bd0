#include "tests/leak_check.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace pool::testing {

std::vector<pid_t> child_processes() {
  std::vector<pid_t> children;
  const pid_t self = ::getpid();
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat_file(entry.path() / "stat");
    std::string stat;
    if (!std::getline(stat_file, stat)) continue;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    pid_t parent = 0;
    rest >> state >> parent;
    if (parent == self) children.push_back(static_cast<pid_t>(std::stol(name)));
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
