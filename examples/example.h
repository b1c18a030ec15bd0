// examples::Example: what every example's main shares (common flags, the chosen pool, timing,
// output, exit status), so that the rest of main reads like the course's snippet:
//
//   examples::Example example("trig_series", "Usage: trig_series [--n N] [common flags]\n...");
//   example.options().add_options()("n", po::value<std::string>()->default_value("100"), "...");
//   example.parse(argc, argv);
//   const std::int64_t n = example.whole_number("n", 1);
//   return example.run([&](auto& workers) {  // a ProcessPool, GilThreadPool, ... or SerialPool
//     return examples::Outcome(n, workers.map_reduce(term, pool::range(1, n + 1), std::plus<>(),
//                                                    0.0));
//   });
//
// Common flags: --ncores N (default: the CPUs this process may use), --backend
// process|gil|free|serial|mpi, --json, --progress (a progress bar on stderr), --pin (worker i
// bound to the i-th allowed CPU; ignored by serial and mpi), --start fork|spawn|forkserver (how
// the process backend starts its workers; default: fork, or the forkserver once threads run),
// --trace FILE (the
// pool's timeline as a Chrome trace, see pool/trace.h; tools/timeline draws it), --stats (busy %,
// efficiency and lost time after the result) and --help. A bad value prints one line on stderr and
// exits with status 2. With --backend mpi the program runs
// under mpirun or srun: rank 0 prints, the other ranks are the pool's workers, and --ncores
// defaults to all of them.
//
// Output: without --json, the lines the example wrote to out(), then "Time in seconds: X.XXX",
// then Outcome::lines. With --json, out() discards its text and stdout holds exactly one line: a
// JSON object {"example", "backend", "ncores" (1 for serial), "n", "seconds", "value"} followed by
// Outcome::fields, and "stats" under --stats.
#ifndef EXAMPLES_EXAMPLE_H_
#define EXAMPLES_EXAMPLE_H_

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "examples/cli.h"
#include "examples/serial_pool.h"
#include "pool/mpi_pool.h"
#include "pool/pool.h"

namespace examples {

enum class Backend { kProcess, kGil, kFree, kSerial, kMpi };

// What an example's computation gives back to run().
struct Outcome {
  Outcome(std::int64_t problem_size, double result) : n(problem_size), value(result) {}

  std::int64_t n;  // the problem size
  double value;    // the result ("value" in JSON)
  // Printed below "Time in seconds" without --json, one per entry.
  std::vector<std::string> lines;
  // Appended to the JSON object after the common fields ("strategy", "exact", ...).
  nlohmann::ordered_json fields = nlohmann::ordered_json::object();
  // Not empty when the example's own check failed: the output is still printed, then this text
  // on stderr, and the exit status is 1.
  std::string failure;
};

// --fail-at and --crash-at: throws std::domain_error for `item`, or with `crash` writes through a
// null pointer, so that a lecture can show how a failing task and a crashing worker are reported.
[[gnu::noinline]] void fail_on_purpose(std::int64_t item, bool crash);

class Example {
 public:
  // name: the program in error messages and JSON's "example"; usage: the head of --help.
  Example(std::string name, std::string usage);

  // The example's own flags: add them before parse().
  boost::program_options::options_description& options() { return options_; }

  // Reads the common and the example's flags. Exits 0 after --help, 2 after a bad flag.
  void parse(int argc, char** argv);

  // For examples that share pool::SharedArrays with their workers: --backend mpi, whose ranks may
  // sit on other nodes, is then a usage error. Call before parse().
  void needs_shared_memory() { needs_shared_memory_ = true; }

  // An example flag's text, parsed after parse(); each exits 2 naming the flag on a bad value.
  std::string text(const std::string& flag) const;
  std::int64_t whole_number(const std::string& flag, std::int64_t minimum) const;
  double positive_number(const std::string& flag) const;
  [[noreturn]] void usage_error(const std::string& message) const;

  Backend backend() const { return backend_; }
  int ncores() const { return backend_ == Backend::kSerial ? 1 : ncores_; }
  bool json() const { return json_; }

  // "running with 4 processes", "running with 4 threads", "running with 2 MPI worker ranks" or
  // "running serially".
  std::string running_on() const;

  // Where the example writes its human lines: std::cout, or nowhere under --json.
  std::ostream& out() { return json_ ? discard_ : std::cout; }

  // The reported wall time runs from the pool's construction to its destruction. An example that
  // prepares its inputs first, or checks its results afterwards, narrows it to the part the course
  // times: start_clock() restarts it, stop_clock() ends it.
  void start_clock();
  void stop_clock();

  // Builds the pool that --backend names (ncores workers, progress bar per --progress), calls
  // body(workers) with it, where body returns an Outcome, and prints the output. Returns main's
  // exit status: 0; 1 after a failed check or an exception (its message on stderr); 130
  // (kInterruptedStatus) after Ctrl-C, printing no result.
  template <class Body>
  int run(Body body);

 private:
  template <class Body>
  Outcome on_chosen_pool(Body& body);
  int report(const Outcome& outcome) const;
  // The trace the chosen pool records into, under --trace or --stats; null otherwise.
  std::shared_ptr<pool::Trace> new_trace();
  // Both thread pools' options from the common flags.
  pool::ThreadPoolOptions thread_options() {
    pool::ThreadPoolOptions options;
    options.progress = progress_;
    options.trace = new_trace();
    options.pin_workers = pin_;
    options.capture_output = capture_output_;
    return options;
  }
  // Prints "NAME: what()" on stderr, then the stack under `where` when there is one; returns 1.
  int report_failure(const std::exception& error, const std::string& where,
                     const std::string& stack) const;

  std::string name_;
  std::string usage_;
  boost::program_options::options_description options_{"Options"};
  boost::program_options::variables_map flags_;
  Backend backend_ = Backend::kProcess;
  int ncores_ = 1;
  bool json_ = false;
  bool progress_ = false;
  bool pin_ = false;
  bool capture_output_ = false;
  std::chrono::nanoseconds task_timeout_{0};  // --task-timeout; zero: none
  std::optional<pool::Start> start_;          // --start; unset: the pool's default
  bool needs_shared_memory_ = false;
  bool ncores_given_ = false;
  std::string trace_path_;
  bool stats_ = false;
  std::shared_ptr<pool::Trace> trace_;
  std::ostream discard_{nullptr};  // no buffer: everything written is dropped
  std::chrono::steady_clock::time_point started_;
  std::optional<std::chrono::steady_clock::time_point> stopped_;
};

template <class Body>
int Example::run(Body body) {
  try {
    // A forked worker must not inherit unwritten output, which it could flush a second time.
    std::cout.flush();
    start_clock();
    stopped_.reset();
    const Outcome outcome = on_chosen_pool(body);
    if (!stopped_) stop_clock();
    return report(outcome);
  } catch (const pool::Interrupted& interrupted) {
    // Ctrl-C or SIGTERM: the pool stopped its workers; no partial result is printed.
    return report_interrupted(name_, interrupted.signal_number());
  } catch (const pool::TaskError& error) {
    return report_failure(error, "thrown at", error.stack_trace());
  } catch (const pool::WorkerDied& error) {
    return report_failure(error, "crashed at", error.stack_trace());
  } catch (const std::exception& error) {
    return report_failure(error, "", "");
  }
}

template <class Body>
Outcome Example::on_chosen_pool(Body& body) {
  // Each pool is destroyed on return, inside the timed span, as a Python `with Pool()` block.
  switch (backend_) {
    case Backend::kProcess: {
      pool::ProcessPoolOptions options;
      options.progress = progress_;
      options.task_timeout = task_timeout_;
      options.trace = new_trace();
      options.pin_workers = pin_;
      options.capture_output = capture_output_;
      options.start = start_;
      pool::ProcessPool workers(ncores_, std::move(options));
      return body(workers);
    }
    case Backend::kGil: {
      pool::GilThreadPool workers(ncores_, pool::GilThreadPool::kDefaultSwitchInterval,
                                  thread_options());
      return body(workers);
    }
    case Backend::kFree: {
      pool::FreeThreadPool workers(ncores_, thread_options());
      return body(workers);
    }
    case Backend::kMpi: {
      pool::MpiPoolOptions options;
      options.progress = progress_;
      options.task_timeout = task_timeout_;
      options.trace = new_trace();
      // Worker ranks serve here until rank 0 finishes; only rank 0 goes on.
      pool::MpiPool workers(ncores_given_ ? ncores_ : 0, std::move(options));
      ncores_ = workers.size();
      return body(workers);
    }
    case Backend::kSerial:
      break;
  }
  SerialPool workers;
  return body(workers);
}

}  // namespace examples

#endif  // EXAMPLES_EXAMPLE_H_
