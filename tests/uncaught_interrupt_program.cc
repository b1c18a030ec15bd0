// The simplest program a Ctrl-C can reach in a pool call: no try/catch around its map. Run by
// uncaught_interrupt_test, which sends it SIGINT once it printed "mapping".
// With the argument "own-handler" it first installs its own SIGINT handler, which the pool must
// leave alone: the handler ends the program with exit status 42.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <thread>

#include "pool/pool.h"

namespace {

constexpr int kOwnHandlerStatus = 42;

void own_handler(int) { ::_exit(kOwnHandlerStatus); }

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "own-handler") == 0) {
    struct sigaction action {};
    action.sa_handler = own_handler;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
  }
  pool::ProcessPool workers(2);
  std::cout << "mapping" << std::endl;
  workers.map(
      [](int) {
        std::this_thread::sleep_for(std::chrono::seconds(5));
        return 0;
      },
      pool::range(0, 10), 1);
  return 0;
}
