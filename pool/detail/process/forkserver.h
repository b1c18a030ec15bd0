// Start::forkserver: one small single-threaded process per program, a new execution of the program
// (bootstrap.h) started on first use or by pool::start_forkserver(), that forks workers for every
// pool that asks. Being a fresh program, it holds no thread or lock of the caller's, whenever it
// is started; forking it costs far less than a new execution.
//
// Each pool holds its own connection to the server. Its workers are the server's children, not
// the pool's: the server sends each worker's pid with a pidfd (signals reach that very process,
// never a reused pid) and, once it reaped the worker, its wait status. The server kills a pool's
// workers when the pool's connection closes, and all of them and itself when the program is gone.
#ifndef POOL_DETAIL_PROCESS_FORKSERVER_H_
#define POOL_DETAIL_PROCESS_FORKSERVER_H_

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>

namespace pool::detail {

struct Message;

// The server's loop, in the new execution; `channel` is its end of the program's channel.
[[noreturn]] void serve_forks(int channel);

// Starts the program's forkserver unless it runs. Thread-safe. Throws std::system_error.
void ensure_forkserver();

// One pool's connection to the server. Not thread-safe: used by the pool's thread.
class ForkserverConnection {
 public:
  // Connects, starting the server if needed. Throws std::system_error.
  ForkserverConnection();
  ~ForkserverConnection();
  ForkserverConnection(const ForkserverConnection&) = delete;
  ForkserverConnection& operator=(const ForkserverConnection&) = delete;

  // A new worker serving on `worker_fd` (sent to the server; still to be closed by the caller),
  // or throws std::system_error with the server's fork errno.
  pid_t fork_worker(int worker_fd);
  // Sends `signal` to the worker; false when it is gone.
  bool kill(pid_t pid, int signal);
  // The worker's wait status once the server reaped it; nullopt while it runs.
  std::optional<int> try_reap(pid_t pid);
  // Waits for the worker's end, giving it `grace` before SIGKILL; its wait status.
  int reap(pid_t pid, std::chrono::milliseconds grace);

 private:
  // Reads what the server sent until `until` (now: only what is there; nullopt: until something
  // came); false if the server is gone.
  bool receive(std::optional<std::chrono::steady_clock::time_point> until);
  // Reads one message, noting a worker's exit status; false when the server is gone.
  bool read_one(Message& message, int& passed);
  // The server is gone, and every worker with it (PR_SET_PDEATHSIG): each counts as killed.
  void lose_server();

  int fd_ = -1;
  std::map<pid_t, int> pidfds_;    // live workers
  std::map<pid_t, int> statuses_;  // reaped, not yet asked for
  bool server_gone_ = false;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_PROCESS_FORKSERVER_H_
